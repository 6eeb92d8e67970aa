//! Parsing of the address lists the subcommands share: `ID=HOST:PORT,...` member lists
//! (`--peers`, `--peer-client-addrs`) and `HOST:PORT,...` endpoint lists (`--endpoints`).
//! Errors name the flag and show an example, so the user knows what to type instead.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};

use tern_net::NodeId;

const EXAMPLE: &str = "example: 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003";

/// Resolves `HOST:PORT` (an IP address, or a name looked up once, first address wins).
pub fn parse_address(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    if !text.contains(':') {
        return Err(format!("`{text}` has no port (expected HOST:PORT)"));
    }
    match text.to_socket_addrs() {
        Ok(mut found) => found
            .next()
            .ok_or_else(|| format!("`{text}` resolves to no address")),
        Err(error) => Err(format!("`{text}` is not HOST:PORT ({error})")),
    }
}

/// Parses `1=127.0.0.1:7001,2=127.0.0.1:7002`: ids at least 1, each once.
pub fn parse_members(flag: &str, text: &str) -> Result<Vec<(NodeId, SocketAddr)>, String> {
    let mut pairs = Vec::new();
    for item in text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let Some((id, address)) = item.split_once('=') else {
            return Err(format!("{flag}: `{item}` is not ID=HOST:PORT ({EXAMPLE})"));
        };
        pairs.push((id.trim().to_string(), address.trim().to_string()));
    }
    members_from_pairs(flag, pairs)
}

/// The table form of a member list in the config file (`[peers]` with `1 = "HOST:PORT"`).
pub fn members_from_table(
    flag: &str,
    table: &BTreeMap<String, String>,
) -> Result<Vec<(NodeId, SocketAddr)>, String> {
    members_from_pairs(
        flag,
        table
            .iter()
            .map(|(id, address)| (id.clone(), address.clone()))
            .collect(),
    )
}

fn members_from_pairs(
    flag: &str,
    pairs: Vec<(String, String)>,
) -> Result<Vec<(NodeId, SocketAddr)>, String> {
    if pairs.is_empty() {
        return Err(format!("{flag} is empty ({EXAMPLE})"));
    }
    let mut members: Vec<(NodeId, SocketAddr)> = Vec::with_capacity(pairs.len());
    for (id_text, address_text) in pairs {
        let id: NodeId = match id_text.parse() {
            Ok(id) if id >= 1 => id,
            _ => {
                return Err(format!(
                    "{flag}: node id `{id_text}` is not a whole number of at least 1"
                ))
            }
        };
        if members.iter().any(|(existing, _)| *existing == id) {
            return Err(format!("{flag}: node id {id} appears twice"));
        }
        let address = parse_address(&address_text).map_err(|problem| {
            format!("{flag}: node {id}: {problem}; expected ID=HOST:PORT,... ({EXAMPLE})")
        })?;
        members.push((id, address));
    }
    members.sort_by_key(|(id, _)| *id);
    Ok(members)
}

/// Parses `127.0.0.1:7101,127.0.0.1:7102`: at least one.
pub fn parse_endpoints(flag: &str, text: &str) -> Result<Vec<SocketAddr>, String> {
    let endpoints = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| parse_address(item).map_err(|problem| format!("{flag}: {problem}")))
        .collect::<Result<Vec<_>, _>>()?;
    if endpoints.is_empty() {
        return Err(format!(
            "{flag} is empty (example: 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103)"
        ));
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_parse_sort_and_refuse_duplicates() {
        let members = parse_members("--peers", "2=127.0.0.1:7002, 1=127.0.0.1:7001").unwrap();
        assert_eq!(
            members,
            vec![
                (1, "127.0.0.1:7001".parse().unwrap()),
                (2, "127.0.0.1:7002".parse().unwrap())
            ]
        );
        let error = parse_members("--peers", "1=127.0.0.1:7001,1=127.0.0.1:7002").unwrap_err();
        assert!(error.contains("appears twice"), "{error}");
        let error = parse_members("--peers", "1:127.0.0.1:7001").unwrap_err();
        assert!(error.starts_with("--peers: `1:127.0.0.1:7001`"), "{error}");
        let error = parse_members("--peers", "0=127.0.0.1:7001").unwrap_err();
        assert!(error.contains("at least 1"), "{error}");
        let error = parse_members("--peers", "1=127.0.0.1").unwrap_err();
        assert!(error.contains("no port"), "{error}");
    }

    #[test]
    fn endpoints_parse() {
        let endpoints = parse_endpoints("--endpoints", "127.0.0.1:1,localhost:2").unwrap();
        assert_eq!(endpoints.len(), 2);
        assert_eq!(endpoints[1].port(), 2);
        assert!(parse_endpoints("--endpoints", " , ").is_err());
    }
}
