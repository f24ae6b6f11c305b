//! Reverse proxies whose forwarding headers are believed: who the client is (`X-Forwarded-For`) and
//! whether it came over https (`X-Forwarded-Proto`). Anyone can send those headers, so they count only
//! when the connection itself comes from a proxy listed here.

use std::net::IpAddr;

use ipnet::IpNet;

/// The trusted proxies (addresses or networks); none by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl std::str::FromStr for TrustedProxies {
    type Err = String;

    /// Comma-separated addresses (`10.0.0.5`, `::1`) or networks (`10.0.0.0/24`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let nets = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{p:?} is neither an IP address nor a network (CIDR)"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self(nets))
    }
}

impl TrustedProxies {
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client behind `peer` (the socket's address): from a trusted proxy, the right-most address of
    /// the `X-Forwarded-For` values (`forwarded_for`, in header order) that is not itself a trusted proxy;
    /// each proxy appends the address it was reached from, so everything left of that is the client's own
    /// say. Otherwise, and whenever the header gives nothing usable, `peer`.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let mut client = canonical(peer);
        if !self.trusts(client) {
            return client;
        }
        let hops = forwarded_for.iter().flat_map(|v| v.split(',')).collect::<Vec<_>>();
        for hop in hops.into_iter().rev() {
            // Garbage marks where the trustworthy part ends: the last good hop stands.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>().or_else(|_| hop.parse::<std::net::SocketAddr>().map(|s| s.ip())).ok().map(canonical)
}

/// An IPv4 address seen through an IPv6 socket (`::ffff:10.0.0.5`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_addresses_and_networks_and_refuses_garbage() {
        let t: TrustedProxies = " 10.0.0.0/24, ::1 ,192.0.2.7".parse().unwrap();
        assert!(t.trusts(ip("10.0.0.200")) && t.trusts(ip("::1")) && t.trusts(ip("192.0.2.7")));
        assert!(!t.trusts(ip("10.0.1.1")) && !t.trusts(ip("192.0.2.8")));
        assert_eq!("".parse::<TrustedProxies>().unwrap(), TrustedProxies::default());
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("proxy.example".parse::<TrustedProxies>().is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let t: TrustedProxies = "10.0.0.1".parse().unwrap();
        assert_eq!(t.client(ip("198.51.100.4"), &["203.0.113.9"]), ip("198.51.100.4"));
        assert_eq!(TrustedProxies::default().client(ip("127.0.0.1"), &["203.0.113.9"]), ip("127.0.0.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let peer = ip("10.0.0.1");
        assert_eq!(t.client(peer, &["203.0.113.9"]), ip("203.0.113.9"));
        // The client wrote the first entry itself; the proxies appended the rest.
        assert_eq!(t.client(peer, &["1.1.1.1, 203.0.113.9, 10.0.0.7"]), ip("203.0.113.9"));
        assert_eq!(t.client(peer, &["1.1.1.1", "203.0.113.9:5123"]), ip("203.0.113.9"));
        assert_eq!(t.client(peer, &["junk, 10.0.0.9"]), ip("10.0.0.9"), "garbage stops the walk");
        assert_eq!(t.client(peer, &[]), peer, "no header: the proxy itself");
        assert_eq!(t.client(ip("::ffff:10.0.0.1"), &["[2001:db8::1]:443"]), ip("2001:db8::1"));
    }
}
