//! The Janus request parser over both transports, then each verb's own fields.
#![no_main]
use libfuzzer_sys::fuzz_target;
use media_node::shared::ids::{HandleId, SessionId};
use media_node::shared::janus::reply::Reply;
use media_node::shared::janus::request::{parse, Transport};

fuzz_target!(|data: &[u8]| {
    for (transport, path) in [
        (Transport::Ws, None),
        (Transport::Http, Some((Some(SessionId(7)), Some(HandleId(9))))),
    ] {
        match parse(data, transport, path) {
            Ok(env) => {
                let _ = env.credentials();
                let _ = env.attach();
                let _ = env.message();
                let _ = env.trickle();
            }
            // Every refusal must map to a Janus error reply.
            Err(e) => {
                let _ = Reply::from_request_error(&e).to_bytes();
            }
        }
    }
});
