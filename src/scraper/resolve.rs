//! Name resolution for fetches: fixed overrides for tests and local crawls, and the
//! address policy that keeps the crawler from being turned against its own network.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use actix_tls::connect::Resolve;
use futures_util::future::LocalBoxFuture;

/// A host resolved only to addresses the policy refuses.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to refused addresses ({addresses}); set ALLOW_PRIVATE_ADDRESSES=true to crawl them")]
pub struct AddressRefused {
    pub host: String,
    pub addresses: String,
}

/// Resolves hosts for the FetchWorker's HTTP client.
///
/// Checking here, on the addresses the connection will use, means a DNS answer that
/// changes between two lookups cannot slip a private address past the check. The fixed
/// overrides of RESOLVE are exempt from the check, because the operator chose them.
#[derive(Clone)]
pub struct CrawlResolver {
    overrides: HashMap<(String, u16), Vec<SocketAddr>>,
    allow_private: bool,
}

impl CrawlResolver {
    /// `overrides` entries are `host:port:address`, as curl's `--resolve` takes them.
    pub fn new(overrides: &[String], allow_private: bool) -> anyhow::Result<Self> {
        let mut map: HashMap<(String, u16), Vec<SocketAddr>> = HashMap::new();
        for entry in overrides.iter().filter(|e| !e.trim().is_empty()) {
            let mut parts = entry.splitn(3, ':');
            let (Some(host), Some(port), Some(address)) = (parts.next(), parts.next(), parts.next()) else {
                anyhow::bail!("RESOLVE entry '{entry}' is not host:port:address");
            };
            let port: u16 = port.parse().map_err(|_| anyhow::anyhow!("RESOLVE entry '{entry}' has an invalid port"))?;
            let ip: IpAddr = address
                .trim_matches(['[', ']'])
                .parse()
                .map_err(|_| anyhow::anyhow!("RESOLVE entry '{entry}' has an invalid address"))?;
            let host = url::Host::parse(host)
                .map_err(|e| anyhow::anyhow!("RESOLVE entry '{entry}' has an invalid host: {e}"))?
                .to_string();
            map.entry((host, port)).or_default().push(SocketAddr::new(ip, port));
        }
        Ok(Self { overrides: map, allow_private })
    }
}

impl Resolve for CrawlResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn StdError>>> {
        Box::pin(async move {
            if let Some(fixed) = self.overrides.get(&(host.to_ascii_lowercase(), port)) {
                return Ok(fixed.clone());
            }
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
            if self.allow_private {
                return Ok(addresses);
            }
            let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                addresses.into_iter().partition(|a| is_public(a.ip()));
            if allowed.is_empty() && !refused.is_empty() {
                let addresses = refused.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", ");
                return Err(Box::new(AddressRefused { host: host.to_string(), addresses }) as Box<dyn StdError>);
            }
            Ok(allowed)
        })
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local
/// (169.254.169.254, the cloud metadata service, included), carrier-grade NAT, multicast,
/// unspecified, documentation, benchmarking or otherwise reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        // to_ipv4 covers the IPv4-mapped (::ffff:a.b.c.d) and the deprecated IPv4-compatible
        // (::a.b.c.d) forms, which some stacks still route to the IPv4 address.
        IpAddr::V6(v6) => match v6.to_ipv4() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        || first == 0x2001 && ip.segments()[1] == 0x0db8
        || first == 0x0064 && ip.segments()[1] == 0xff9b && ip.segments()[2] == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_addresses() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "2001:db8::1",
            "::127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "fec0::1",
            "0.1.2.3",
            "100.127.255.255",
            "192.0.0.8",
            "198.18.0.1",
            "203.0.113.5",
            "240.0.0.1",
            "169.254.0.1",
        ] {
            assert!(!is_public(address.parse().unwrap()), "{address} must be refused");
        }
    }

    #[test]
    fn public_addresses() {
        for address in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert!(is_public(address.parse().unwrap()), "{address} must be allowed");
        }
    }

    #[actix_rt::test]
    async fn loopback_is_refused_by_default() {
        let resolver = CrawlResolver::new(&[], false).unwrap();
        let error = resolver.lookup("127.0.0.1", 80).await.unwrap_err();
        assert!(error.downcast_ref::<AddressRefused>().is_some(), "{error}");
    }

    #[actix_rt::test]
    async fn override_is_exempt_from_policy() {
        let resolver = CrawlResolver::new(&["allowed.test:8080:127.0.0.1".into()], false).unwrap();
        let addresses = resolver.lookup("allowed.test", 8080).await.unwrap();
        assert_eq!(addresses, ["127.0.0.1:8080".parse().unwrap()]);
        let error = resolver.lookup("127.0.0.1", 8080).await.unwrap_err();
        assert!(error.downcast_ref::<AddressRefused>().is_some(), "{error}");
    }

    #[actix_rt::test]
    async fn override_maps_idn_host() {
        let resolver = CrawlResolver::new(&["пример.рф:8080:127.0.0.1".into()], true).unwrap();
        let addresses = resolver.lookup("xn--e1afmkfd.xn--p1ai", 8080).await.unwrap();
        assert_eq!(addresses, ["127.0.0.1:8080".parse().unwrap()]);
    }

    #[test]
    fn invalid_override_is_rejected() {
        assert!(CrawlResolver::new(&["example.com:80".into()], true).is_err());
        assert!(CrawlResolver::new(&["example.com:http:1.2.3.4".into()], true).is_err());
    }
}
