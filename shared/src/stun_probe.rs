//! One STUN Binding request and the address its answer maps us to (the Admin API's `test_stun`:
//! can this process use that STUN server, and as what address does it see us).
//!
//! Written out rather than taken from the WebRTC stack: the signaling gateway, which answers the
//! Admin API, does not link the media stack, and a Binding request is 20 bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;

/// How long the server may take to answer (Janus waits 5 s too).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

const MAGIC_COOKIE: u32 = 0x2112_a442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const MAPPED_ADDRESS: u16 = 0x0001;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const HEADER_LEN: usize = 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProbeError {
    #[error("could not bind the local port: {0}")]
    Bind(String),
    #[error("could not send the request: {0}")]
    Send(String),
    #[error("could not receive the answer: {0}")]
    Receive(String),
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
    #[error("the answer maps no address")]
    Unreadable,
}

/// A Binding request with transaction id `id` (no attributes).
pub fn binding_request(id: [u8; 12]) -> [u8; HEADER_LEN] {
    let mut m = [0u8; HEADER_LEN];
    m[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    m[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m[8..20].copy_from_slice(&id);
    m
}

/// The address a Binding success response to transaction `id` maps us to: its
/// XOR-MAPPED-ADDRESS, else its MAPPED-ADDRESS (RFC 3489 servers). `None` for anything else.
pub fn mapped_address(answer: &[u8], id: [u8; 12]) -> Option<SocketAddr> {
    let header = answer.get(..HEADER_LEN)?;
    let kind = u16::from_be_bytes([header[0], header[1]]);
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if kind != BINDING_SUCCESS || header[4..8] != MAGIC_COOKIE.to_be_bytes() || header[8..20] != id {
        return None;
    }
    let mut attributes = answer.get(HEADER_LEN..HEADER_LEN + len)?;
    let mut plain = None;
    while attributes.len() >= 4 {
        let kind = u16::from_be_bytes([attributes[0], attributes[1]]);
        let len = usize::from(u16::from_be_bytes([attributes[2], attributes[3]]));
        let value = attributes.get(4..4 + len)?;
        match kind {
            XOR_MAPPED_ADDRESS => return address(value, Some(&header[4..20])),
            MAPPED_ADDRESS => plain = address(value, None),
            _ => {}
        }
        // Attributes are padded to 4 bytes.
        attributes = attributes.get((4 + len).next_multiple_of(4)..).unwrap_or_default();
    }
    plain
}

/// An address attribute's value (family, port, address), XORed with the cookie and transaction
/// id (`xor`, 16 bytes) when it is an XOR-MAPPED-ADDRESS.
fn address(value: &[u8], xor: Option<&[u8]>) -> Option<SocketAddr> {
    let unxor = |bytes: &[u8], at: usize| -> Vec<u8> {
        bytes.iter().enumerate().map(|(i, b)| b ^ xor.map_or(0, |x| x[at + i])).collect()
    };
    let port = unxor(value.get(2..4)?, 0);
    let port = u16::from_be_bytes([port[0], port[1]]);
    let ip = match value.get(1)? {
        0x01 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(unxor(value.get(4..8)?, 0).as_slice()).ok()?)),
        0x02 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(unxor(value.get(4..20)?, 0).as_slice()).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Sends a Binding request from `local_port` (0: any) to `server` and waits up to `timeout`
/// for its answer: the address the server saw the request come from.
pub async fn probe(server: SocketAddr, local_port: u16, timeout: Duration) -> Result<SocketAddr, ProbeError> {
    let any: IpAddr = if server.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
    let socket = UdpSocket::bind((any, local_port)).await.map_err(|e| ProbeError::Bind(e.to_string()))?;
    let id: [u8; 12] = rand::random();
    socket.send_to(&binding_request(id), server).await.map_err(|e| ProbeError::Send(e.to_string()))?;
    let answer = async {
        let mut buf = [0u8; 1500];
        loop {
            // The answer is the one to our transaction, wherever it comes from (as Janus takes
            // it); anything else reaching the port is skipped until the deadline.
            let (n, _) = socket.recv_from(&mut buf).await.map_err(|e| ProbeError::Receive(e.to_string()))?;
            if let Some(mapped) = mapped_address(&buf[..n], id) {
                return Ok(mapped);
            }
        }
    };
    tokio::time::timeout(timeout, answer).await.unwrap_or(Err(ProbeError::NoAnswer(timeout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 section 2.2's sample IPv4 response (XOR-MAPPED-ADDRESS 192.0.2.1:32853), without
    /// its integrity and fingerprint, which the probe does not check.
    const ID: [u8; 12] = [0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae];
    const RESPONSE: [u8; 32] = [
        0x01, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
        0xdf, 0xae, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    ];

    #[test]
    fn rfc_5769_s_sample_response_maps_its_address() {
        assert_eq!(mapped_address(&RESPONSE, ID), Some("192.0.2.1:32853".parse().unwrap()));
        let mut other = ID;
        other[0] ^= 1;
        assert_eq!(mapped_address(&RESPONSE, other), None, "another transaction's answer");
        assert_eq!(mapped_address(&RESPONSE[..30], ID), None, "cut short");
        let request = binding_request(ID);
        assert_eq!(mapped_address(&request, ID), None, "a request is no answer");
        assert_eq!(&request[..8], &[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]);
    }

    #[test]
    fn a_plain_mapped_address_is_read_when_no_xor_one_is_there() {
        let mut m = RESPONSE;
        // MAPPED-ADDRESS 10.0.0.7:3478, unxored.
        m[20..32].copy_from_slice(&[0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x0d, 0x96, 10, 0, 0, 7]);
        assert_eq!(mapped_address(&m, ID), Some("10.0.0.7:3478".parse().unwrap()));
    }
}
