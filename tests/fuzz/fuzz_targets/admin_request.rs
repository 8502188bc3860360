//! The Admin API's request parser, at every level (server, session, handle).
#![no_main]
use libfuzzer_sys::fuzz_target;
use media_node::shared::janus::admin;

fuzz_target!(|data: &[u8]| {
    for path in [None, Some((7, None)), Some((7, Some(9)))] {
        match admin::parse(data, path) {
            Ok(env) => {
                let _ = env.needs_secret();
                if let Ok(r) = &env.request {
                    let _ = r.label();
                }
            }
            Err((txn, e)) => {
                let _ = admin::error(txn.as_deref(), &e);
            }
        }
    }
});
