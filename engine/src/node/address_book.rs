//! Where each member is reached: its peer address (Raft traffic) and client address. The book
//! travels in the membership's context (raft `Membership::context`), so every member learns a
//! new member's addresses from the log, and a restarted member from its snapshot or WAL. The
//! bootstrap membership carries none: its addresses are the `--peers` and
//! `--peer-client-addrs` every member was started with.
//!
//! Encoding: count (`u32` LE), then per member in id order: id (`u64` LE), the peer address and
//! the client address as length-prefixed (`u32` LE) UTF-8 text.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::raft::NodeId;

/// Most members a book may list (far above any sensible cluster; bounds a decode).
const MEMBERS_MAX: usize = 1024;

/// One member's addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Addresses {
    pub(crate) peer: SocketAddr,
    /// `None` when this node was not told (a bootstrap member without `--peer-client-addrs`).
    pub(crate) client: Option<SocketAddr>,
}

/// The members' addresses by id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AddressBook {
    pub(crate) members: BTreeMap<NodeId, Addresses>,
}

impl AddressBook {
    /// The book the command line gives: every `--peers` entry, with its client address when
    /// known (this node's own from `own_client`).
    pub(crate) fn from_flags(
        peers: &[(NodeId, SocketAddr)],
        peer_client_addrs: &[(NodeId, SocketAddr)],
        own: (NodeId, SocketAddr),
    ) -> AddressBook {
        let members = peers
            .iter()
            .map(|&(id, peer)| {
                let client = if id == own.0 {
                    Some(own.1)
                } else {
                    peer_client_addrs
                        .iter()
                        .find(|(other, _)| *other == id)
                        .map(|(_, addr)| *addr)
                };
                (id, Addresses { peer, client })
            })
            .collect();
        AddressBook { members }
    }

    /// `self` with the entries of `other` over its own.
    pub(crate) fn overlaid(&self, other: &AddressBook) -> AddressBook {
        let mut members = self.members.clone();
        members.extend(
            other
                .members
                .iter()
                .map(|(id, addresses)| (*id, *addresses)),
        );
        AddressBook { members }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.members.len() as u32).to_le_bytes());
        for (id, addresses) in &self.members {
            out.extend_from_slice(&id.to_le_bytes());
            let client = addresses
                .client
                .map(|addr| addr.to_string())
                .unwrap_or_default();
            for text in [addresses.peer.to_string(), client] {
                out.extend_from_slice(&(text.len() as u32).to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            }
        }
        out
    }

    /// Decodes a book; an empty context is an empty book. The error says what is wrong.
    pub(crate) fn decode(bytes: &[u8]) -> Result<AddressBook, String> {
        if bytes.is_empty() {
            return Ok(AddressBook::default());
        }
        let mut at = 0;
        let mut take = |count: usize| -> Result<&[u8], String> {
            let end = at + count;
            let slice = bytes
                .get(at..end)
                .ok_or_else(|| format!("address book truncated at byte {at}"))?;
            at = end;
            Ok(slice)
        };
        let count = u32::from_le_bytes(take(4)?.try_into().unwrap_or_default()) as usize;
        if count > MEMBERS_MAX {
            return Err(format!(
                "address book lists {count} members (at most {MEMBERS_MAX})"
            ));
        }
        let mut members = BTreeMap::new();
        for _ in 0..count {
            let id = u64::from_le_bytes(take(8)?.try_into().unwrap_or_default());
            let mut texts = Vec::with_capacity(2);
            for _ in 0..2 {
                let length = u32::from_le_bytes(take(4)?.try_into().unwrap_or_default());
                let text = std::str::from_utf8(take(length as usize)?)
                    .map_err(|_| format!("address of member {id} is not UTF-8"))?;
                texts.push(text.to_string());
            }
            let peer = texts[0]
                .parse()
                .map_err(|_| format!("member {id}'s peer address {:?} is invalid", texts[0]))?;
            let client = if texts[1].is_empty() {
                None
            } else {
                Some(texts[1].parse().map_err(|_| {
                    format!("member {id}'s client address {:?} is invalid", texts[1])
                })?)
            };
            members.insert(id, Addresses { peer, client });
        }
        if at != bytes.len() {
            return Err(format!("{} bytes after the address book", bytes.len() - at));
        }
        Ok(AddressBook { members })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> AddressBook {
        let peers = [
            (1, "127.0.0.1:7000".parse().unwrap()),
            (2, "[::1]:7002".parse().unwrap()),
        ];
        let clients = [(2, "[::1]:7003".parse().unwrap())];
        AddressBook::from_flags(&peers, &clients, (1, "127.0.0.1:7001".parse().unwrap()))
    }

    #[test]
    fn books_round_trip_and_damage_is_an_error() {
        let book = book();
        assert_eq!(
            book.members[&1].client,
            Some("127.0.0.1:7001".parse().unwrap())
        );
        let bytes = book.encode();
        assert_eq!(AddressBook::decode(&bytes).unwrap(), book);
        assert_eq!(AddressBook::decode(&[]).unwrap(), AddressBook::default());
        for cut in 1..bytes.len() {
            assert!(AddressBook::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(AddressBook::decode(&extra).is_err());
        let mut bad = bytes;
        let position = bad.iter().position(|byte| *byte == b'7').unwrap();
        bad[position] = b'x';
        assert!(AddressBook::decode(&bad).unwrap_err().contains("invalid"));
    }

    #[test]
    fn an_overlay_replaces_and_adds_entries() {
        let mut newer = AddressBook::default();
        let moved = Addresses {
            peer: "127.0.0.1:9000".parse().unwrap(),
            client: None,
        };
        newer.members.insert(2, moved);
        newer.members.insert(4, moved);
        let merged = book().overlaid(&newer);
        assert_eq!(merged.members.len(), 3);
        assert_eq!(merged.members[&2], moved);
        assert_eq!(merged.members[&1], book().members[&1]);
    }
}
