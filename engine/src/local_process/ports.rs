//! Picking loopback ports for local clusters outside the kernel's ephemeral range.
//!
//! A port the kernel hands out for port 0 lies in its ephemeral range, where any client socket
//! (the launcher's own, or any other program's) may take it between the pick and the server's
//! bind, or between a member's kill and its restart. Ports outside that range are only ever taken
//! by a program that asks for them by number.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::net::{TcpListener, UdpSocket};

/// Where Linux says its ephemeral ports are ("LOW HIGH").
const EPHEMERAL_RANGE_PATH: &str = "/proc/sys/net/ipv4/ip_local_port_range";
/// Linux's default ephemeral range, used when the file cannot be read.
const EPHEMERAL_RANGE_DEFAULT: (u16, u16) = (32_768, 60_999);
/// Lowest port picked (below it: well-known and registered services).
const PORT_MIN: u16 = 10_000;
/// Fewest ports a range outside the ephemeral one must hold to be picked from.
const PICK_RANGE_PORTS_MIN: u16 = 1_000;
/// Random candidates tried per port wanted before giving up.
const CANDIDATES_PER_PORT_MAX: usize = 100;

/// `count` distinct ports on 127.0.0.1, at random outside the ephemeral range, free for both
/// UDP (tern's QUIC) and TCP (etcd's gRPC and peer links). Each is bound to check it is free,
/// and all stay bound until the pick ends, so none repeats; another program could still take
/// one before its server binds it (then that server fails to start and its launcher says so,
/// with its log).
pub fn free_loopback_ports(count: usize) -> Result<Vec<u16>, String> {
    let (low, high) = pick_range(ephemeral_range())?;
    let span = u64::from(high - low) + 1;
    let mut held = Vec::with_capacity(count);
    let mut ports = Vec::with_capacity(count);
    let mut tried = HashSet::new();
    for _ in 0..count.saturating_mul(CANDIDATES_PER_PORT_MAX) {
        if ports.len() == count {
            break;
        }
        let port = low + (random_u64() % span) as u16;
        if !tried.insert(port) {
            continue;
        }
        if let (Ok(udp), Ok(tcp)) = (
            UdpSocket::bind(("127.0.0.1", port)),
            TcpListener::bind(("127.0.0.1", port)),
        ) {
            held.push((udp, tcp));
            ports.push(port);
        }
    }
    if ports.len() < count {
        return Err(format!(
            "found only {} of {count} free ports on 127.0.0.1 in {low}..={high} (outside \
             the ephemeral range in {EPHEMERAL_RANGE_PATH}): free some ports and retry",
            ports.len()
        ));
    }
    Ok(ports)
}

/// The kernel's ephemeral range, or Linux's default when it cannot be read.
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string(EPHEMERAL_RANGE_PATH)
        .ok()
        .and_then(|text| parse_range(&text))
        .unwrap_or(EPHEMERAL_RANGE_DEFAULT)
}

fn parse_range(text: &str) -> Option<(u16, u16)> {
    let mut bounds = text.split_whitespace().map(str::parse::<u16>);
    match (bounds.next(), bounds.next()) {
        (Some(Ok(low)), Some(Ok(high))) if low <= high => Some((low, high)),
        _ => None,
    }
}

/// Below the ephemeral range when that leaves room, else above it.
fn pick_range((ephemeral_low, ephemeral_high): (u16, u16)) -> Result<(u16, u16), String> {
    if ephemeral_low.saturating_sub(PORT_MIN) >= PICK_RANGE_PORTS_MIN {
        Ok((PORT_MIN, ephemeral_low - 1))
    } else if u16::MAX - ephemeral_high >= PICK_RANGE_PORTS_MIN {
        Ok((ephemeral_high + 1, u16::MAX))
    } else {
        Err(format!(
            "the ephemeral port range {ephemeral_low}..={ephemeral_high} \
             ({EPHEMERAL_RANGE_PATH}) leaves no room for local cluster ports: narrow it"
        ))
    }
}

/// A random number from the standard library's per-process random hash keys (a fresh key
/// per call): enough spread for picking ports, without a dependency.
fn random_u64() -> u64 {
    RandomState::new().build_hasher().finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pick_range_avoids_the_ephemeral_range() {
        assert_eq!(parse_range("32768\t60999\n"), Some((32_768, 60_999)));
        assert_eq!(parse_range("nonsense"), None);
        assert_eq!(pick_range((32_768, 60_999)), Ok((PORT_MIN, 32_767)));
        assert_eq!(pick_range((1_024, 60_999)), Ok((61_000, u16::MAX)));
        assert!(pick_range((1_024, 65_000)).is_err());
    }

    #[test]
    fn picked_ports_are_distinct_and_outside_the_ephemeral_range() {
        let (ephemeral_low, ephemeral_high) = ephemeral_range();
        let ports = free_loopback_ports(6).unwrap();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), 6, "{ports:?}");
        for port in ports {
            assert!(
                !(ephemeral_low..=ephemeral_high).contains(&port),
                "{port} is in {ephemeral_low}..={ephemeral_high}"
            );
        }
    }
}
