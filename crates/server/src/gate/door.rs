//! Doors that cannot present a token (raw TCP, UDP) act as a named identity from the tokens file,
//! optionally only for some source addresses. On a hub with tokens such a door must be bound
//! explicitly, or it refuses to start.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::auth::{Identity, Perms, Tokens};
use crate::ServerError;

/// How a tokenless door is authorised: the token name it acts as, and who may use it.
#[derive(Debug, Clone, Default)]
pub struct DoorPolicy {
    /// The name of a token (from the tokens file) whose permissions apply to everything arriving
    /// at this door. Required on a hub with tokens.
    pub act_as: Option<String>,
    /// Source addresses allowed (empty: any).
    pub allow: Vec<Cidr>,
}

/// A door's resolved policy.
#[derive(Debug, Clone)]
pub(crate) struct DoorAccess {
    pub(crate) identity: Identity,
    allow: Vec<Cidr>,
}

impl DoorPolicy {
    /// Resolves the policy against the hub's tokens; `door` is for messages (`raw`, `udp`).
    ///
    /// # Errors
    /// [`ServerError::Door`] if the hub has tokens and the door is not bound to one, or is bound
    /// to a name no token has.
    pub(crate) fn resolve(&self, door: &str, tokens: &Tokens) -> Result<DoorAccess, ServerError> {
        let identity = match (&self.act_as, tokens.enabled()) {
            (None, false) => Identity::open(),
            (None, true) => {
                return Err(ServerError::Door(format!(
                "the {door} door cannot present a token, and this hub requires one: bind it to a \
                     token's name with --{door}-as NAME (its permissions then apply to everything \
                     arriving there), optionally limited with --{door}-allow CIDR"
            )))
            }
            (Some(name), false) => Identity {
                name: name.clone(),
                perms: Perms::ALL,
                names: None,
            },
            (Some(name), true) => tokens.by_name(name).ok_or_else(|| {
                ServerError::Door(format!(
                    "--{door}-as {name}: no token named {name:?} in the tokens file"
                ))
            })?,
        };
        Ok(DoorAccess {
            identity,
            allow: self.allow.clone(),
        })
    }
}

impl DoorAccess {
    /// Whether `ip` may use the door.
    pub(crate) fn allows(&self, ip: IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|c| c.contains(ip))
    }

    /// The sender name of what arrives from `ip`: `NAME@ip`, or `door@ip` without a name.
    pub(crate) fn sender(&self, door: &str, ip: IpAddr) -> String {
        let name = if self.identity.name.is_empty() {
            door
        } else {
            &self.identity.name
        };
        format!("{name}@{ip}")
    }

    /// The policy in words, for the start-up banner.
    pub(crate) fn describe(&self) -> String {
        let who = if self.identity.name.is_empty() {
            "open: no token needed".to_owned()
        } else {
            format!(
                "acts as {} ({})",
                self.identity.name,
                self.identity.perms.names()
            )
        };
        if self.allow.is_empty() {
            who
        } else {
            let from: Vec<String> = self.allow.iter().map(Cidr::to_string).collect();
            format!("{who}; only from {}", from.join(", "))
        }
    }
}

/// An address range: `10.0.0.0/8`, `fd00::/8`, or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
            if prefix == 0 {
                0
            } else {
                bits >> (width - prefix)
            }
        }
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                masked(u32::from(a).into(), self.prefix, 32)
                    == masked(u32::from(b).into(), self.prefix, 32)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                masked(u128::from(a), self.prefix, 128) == masked(u128::from(b), self.prefix, 128)
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("{s:?} is not an address range (examples: 10.0.0.0/8, 192.168.1.7, fd00::/8)")
        };
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => width,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(bad)?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.200.3.4".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(
            c.contains("::ffff:10.1.2.3".parse().unwrap()),
            "v4-mapped v6"
        );
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nonsense", "1.2.3.4/x", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn policy_needs_a_name_on_a_hub_with_tokens() {
        let mut tokens = Tokens::default();
        tokens.add("cam-token-0123456789", "cam", Perms::UPLOAD);
        let err = DoorPolicy::default().resolve("raw", &tokens).unwrap_err();
        assert!(err.to_string().contains("--raw-as NAME"), "{err}");
        let unknown = DoorPolicy {
            act_as: Some("nobody".into()),
            allow: vec![],
        };
        assert!(unknown.resolve("raw", &tokens).is_err());
        let bound = DoorPolicy {
            act_as: Some("cam".into()),
            allow: vec!["127.0.0.1".parse().unwrap()],
        }
        .resolve("raw", &tokens)
        .unwrap();
        assert_eq!(bound.identity.perms, Perms::UPLOAD);
        assert!(bound.allows("127.0.0.1".parse().unwrap()));
        assert!(!bound.allows("127.0.0.2".parse().unwrap()));
        assert_eq!(
            bound.sender("raw", "127.0.0.1".parse().unwrap()),
            "cam@127.0.0.1"
        );
        let open = DoorPolicy::default()
            .resolve("raw", &Tokens::default())
            .unwrap();
        assert_eq!(
            open.sender("raw", "127.0.0.1".parse().unwrap()),
            "raw@127.0.0.1"
        );
        assert!(open.describe().starts_with("open"));
    }
}
