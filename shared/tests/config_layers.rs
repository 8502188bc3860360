//! Configuration layering, in a process of its own because it sets environment variables:
//! defaults < file < `PORTUNUS_*` environment < flags.

use shared::config::Config;
use std::io::Write;

#[test]
fn environment_overrides_the_file_and_flags_override_the_environment() {
    let dir = std::env::temp_dir().join(format!("portunus-layers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("p.toml");
    writeln!(std::fs::File::create(&file).unwrap(), "ws_port = 9000\nhttp_port = 9001\nsession_timeout = 30").unwrap();
    // SAFETY: this test binary has a single test, so no other thread reads the environment.
    unsafe {
        std::env::set_var("PORTUNUS_HTTP_PORT", "9100");
        std::env::set_var("PORTUNUS_SESSION_TIMEOUT", "40");
        std::env::set_var("PORTUNUS_HTTP_BASE_PATH", "/api");
        std::env::set_var("PORTUNUS_MEDIA_IPS", "127.0.0.1,10.1.2.3");
    }
    let c = Config::load(Some(&file), &[("session_timeout", "50".into())]).unwrap();
    assert_eq!(c.ws_port, 9000, "file over default");
    assert_eq!(c.http_port, 9100, "environment over file");
    assert_eq!(c.session_timeout, 50, "flag over environment");
    assert_eq!(c.http_base_path, "/api");
    assert_eq!(c.admin_port, 7088, "untouched default");
    assert_eq!(c.media_ips, vec!["127.0.0.1".to_string(), "10.1.2.3".to_string()], "a list from the environment");
    // A bad value is an error that names the problem, not a silent default.
    unsafe { std::env::set_var("PORTUNUS_WS_PORT", "not-a-port") };
    let e = Config::load(Some(&file), &[]).unwrap_err();
    assert!(e.to_string().contains("ws_port"), "{e}");
}
