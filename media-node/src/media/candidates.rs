//! How many remote ICE candidates a PeerConnection takes: 25, libnice's limit
//! (`NICE_AGENT_MAX_REMOTE_CANDIDATES`, the agent under Janus), counted over its remote
//! descriptions and trickled candidates together. The ICE agent pairs every remote candidate
//! with its own and sends connectivity checks to each, so without a limit one client could
//! make the node send checks to as many addresses as its messages can name.
//!
//! Candidates are counted by where they point (component, transport, address, port): the same
//! one in several m-sections (BUNDLE), in a renegotiation's description or trickled again
//! counts once. A description with a new ICE ufrag (an ICE restart) starts the count again.
//! What is past the limit is left out, as libnice leaves it out under Janus: the client is not
//! told.

/// The most remote candidates one PeerConnection takes (libnice's, under Janus).
pub const MAX_REMOTE_CANDIDATES: usize = 25;

/// Where a remote candidate points.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Target {
    component: u16,
    transport: String,
    address: String,
    port: u16,
}

impl Target {
    /// From `candidate:<foundation> <component> <transport> <priority> <address> <port> typ ...`
    /// (with or without `a=`); `None` if it is not one, which the ICE agent then refuses itself.
    fn of(candidate: &str) -> Option<Self> {
        let c = candidate.trim();
        let c = c.strip_prefix("a=").unwrap_or(c);
        let mut fields = c.strip_prefix("candidate:")?.split_ascii_whitespace();
        let _foundation = fields.next()?;
        let component = fields.next()?.parse().ok()?;
        let transport = fields.next()?.to_ascii_lowercase();
        let _priority = fields.next()?;
        let address = fields.next()?.to_ascii_lowercase();
        let port = fields.next()?.parse().ok()?;
        Some(Self { component, transport, address, port })
    }
}

/// The remote candidates one PeerConnection took.
#[derive(Debug, Default)]
pub struct RemoteCandidates {
    targets: Vec<Target>,
    /// The ICE ufrag of the last remote description (its candidates' generation).
    ufrag: Option<String>,
}

impl RemoteCandidates {
    /// Whether a trickled candidate may be added (then counted).
    pub fn admit(&mut self, candidate: &str) -> bool {
        let Some(target) = Target::of(candidate) else { return true };
        if self.targets.contains(&target) {
            return true;
        }
        if self.targets.len() >= MAX_REMOTE_CANDIDATES {
            return false;
        }
        self.targets.push(target);
        true
    }

    /// `sdp`, a remote description, without the candidates past the limit; those it keeps are
    /// counted. A new ufrag starts the count again.
    pub fn admit_sdp(&mut self, sdp: String) -> String {
        let ufrag = sdp.lines().find_map(|l| l.trim().strip_prefix("a=ice-ufrag:")).map(str::to_owned);
        // Trickled before the first description: the same generation.
        if self.ufrag.is_some() && ufrag != self.ufrag {
            self.targets.clear();
        }
        self.ufrag = ufrag;
        if !sdp.contains("a=candidate:") {
            return sdp;
        }
        let mut kept = String::with_capacity(sdp.len());
        for line in sdp.split_inclusive('\n') {
            if line.starts_with("a=candidate:") && !self.admit(line) {
                continue;
            }
            kept.push_str(line);
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(port: u16) -> String {
        format!("candidate:1 1 udp 2130706431 192.0.2.1 {port} typ host")
    }

    #[test]
    fn takes_25_distinct_targets_counting_a_repeat_once() {
        let mut r = RemoteCandidates::default();
        for port in 0..25 {
            assert!(r.admit(&candidate(1000 + port)));
            assert!(r.admit(&candidate(1000 + port)), "the same target again");
        }
        assert!(!r.admit(&candidate(2000)));
        assert!(r.admit(&candidate(1000)), "one already taken");
        assert!(r.admit("not a candidate"), "left for the ICE agent to refuse");
    }

    #[test]
    fn a_description_keeps_what_fits_and_a_new_ufrag_starts_again() {
        let lines = |ufrag: &str, ports: std::ops::Range<u16>| {
            let mut sdp = format!("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:{ufrag}\r\n");
            for port in ports {
                sdp += &format!("a={}\r\n", candidate(port));
            }
            sdp + "a=end-of-candidates\r\n"
        };
        let mut r = RemoteCandidates::default();
        let kept = r.admit_sdp(lines("a", 0..40));
        assert_eq!(kept.matches("a=candidate:").count(), 25);
        assert!(kept.ends_with("a=end-of-candidates\r\n"));
        assert!(!r.admit(&candidate(100)), "trickled past the description's 25");
        // A renegotiation names the same ones: nothing more is counted.
        assert_eq!(r.admit_sdp(lines("a", 0..25)).matches("a=candidate:").count(), 25);
        // An ICE restart: a fresh count.
        assert_eq!(r.admit_sdp(lines("b", 100..110)).matches("a=candidate:").count(), 10);
        assert!(r.admit(&candidate(200)));
    }

    #[test]
    fn candidates_trickled_before_the_first_description_count() {
        let mut r = RemoteCandidates::default();
        for port in 0..20 {
            assert!(r.admit(&candidate(port)));
        }
        let sdp =
            format!("a=ice-ufrag:a\r\n{}", (20..30).map(|p| format!("a={}\r\n", candidate(p))).collect::<String>());
        assert_eq!(r.admit_sdp(sdp).matches("a=candidate:").count(), 5);
    }
}
