//! HTTP read byte by byte off a raw socket, to check framing as a proxy or browser sees it.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;

/// Reads one HTTP/1.1 response off a raw socket and checks its framing byte by byte:
/// returns (status line, headers, body) or panics if the body is not completely framed.
pub fn read_framed_response(s: &mut TcpStream) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).expect("status line");
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("header line");
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').expect("header");
        headers.push((k.trim().to_lowercase(), v.trim().to_owned()));
    }
    let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let body = if let Some(len) = get("content-length") {
        let len: usize = len.parse().expect("content-length");
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).expect("a body as long as Content-Length says");
        body
    } else if get("transfer-encoding").as_deref() == Some("chunked") {
        let mut body = Vec::new();
        loop {
            let mut size = String::new();
            r.read_line(&mut size).expect("chunk size");
            let n = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).expect("complete chunk");
            assert_eq!(&chunk[n..], b"\r\n", "chunk terminator");
            if n == 0 {
                break; // The terminating zero-length chunk: the response is complete.
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body
    } else {
        panic!("response without Content-Length or chunked framing: {headers:?}");
    };
    (status, headers, body)
}
