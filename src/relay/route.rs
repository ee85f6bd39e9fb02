//! Where a domain's mail goes: a static route, or its MX hosts by preference
//! (the domain itself when it has no MX, RFC 5321 §5.1), each with its addresses.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::{Resolver, TokioResolver};

/// One host to try, with the name its certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Name to verify in the server certificate (the MX host, or the route's host).
    pub tls_name: String,
    /// Addresses to connect to, in order.
    pub addrs: Vec<SocketAddr>,
}

/// Why no destination was found.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    /// The lookup failed for now (retry later).
    #[error("DNS lookup failed: {0}")]
    Temporary(#[source] hickory_resolver::ResolveError),
    /// The domain does not exist or has no usable host (permanent).
    #[error("no mail server for {0}")]
    NoHost(String),
}

/// Resolves destinations.
#[derive(Debug, Clone)]
pub struct Router {
    routes: BTreeMap<String, String>,
    resolver: TokioResolver,
    mx_port: u16,
}

impl Router {
    /// Static routes first; DNS from `dns` servers, or the system configuration when empty.
    pub fn new(
        routes: BTreeMap<String, String>,
        dns: &[SocketAddr],
        mx_port: u16,
    ) -> Result<Router, RouteError> {
        let resolver = if dns.is_empty() {
            TokioResolver::builder_tokio()
                .map_err(RouteError::Temporary)?
                .build()
        } else {
            let mut group = NameServerConfigGroup::new();
            for addr in dns {
                group.merge(NameServerConfigGroup::from_ips_clear(
                    &[addr.ip()],
                    addr.port(),
                    true,
                ));
            }
            Resolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], group),
                TokioConnectionProvider::default(),
            )
            .build()
        };
        Ok(Router {
            routes: routes
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            resolver,
            mx_port,
        })
    }

    /// The hosts for `domain`, most preferred first.
    pub async fn destinations(&self, domain: &str) -> Result<Vec<Destination>, RouteError> {
        if let Some(route) = self.routes.get(&domain.to_ascii_lowercase()) {
            let (host, port) = route
                .rsplit_once(':')
                .and_then(|(h, p)| {
                    p.parse::<u16>()
                        .ok()
                        .map(|p| (h.trim_matches(['[', ']']).to_string(), p))
                })
                .ok_or_else(|| RouteError::NoHost(domain.to_string()))?;
            let addrs = match host.parse::<IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, port)],
                Err(_) => self.addresses(&host, port).await?,
            };
            return Ok(vec![Destination {
                tls_name: host,
                addrs,
            }]);
        }
        let hosts: Vec<String> = match self.resolver.mx_lookup(format!("{domain}.")).await {
            Ok(mx) => {
                let mut records: Vec<(u16, String)> = mx
                    .iter()
                    .map(|r| {
                        (
                            r.preference(),
                            r.exchange().to_utf8().trim_end_matches('.').to_string(),
                        )
                    })
                    .collect();
                records.sort();
                // A null MX (RFC 7505) means the domain accepts no mail.
                if records.len() == 1 && records[0].1.is_empty() {
                    return Err(RouteError::NoHost(domain.to_string()));
                }
                records.into_iter().map(|(_, h)| h).collect()
            }
            Err(e) if e.is_no_records_found() => vec![domain.to_string()],
            Err(e) if e.is_nx_domain() => return Err(RouteError::NoHost(domain.to_string())),
            Err(e) => return Err(RouteError::Temporary(e)),
        };
        let mut out = Vec::new();
        for host in hosts {
            match self.addresses(&host, self.mx_port).await {
                Ok(addrs) if !addrs.is_empty() => out.push(Destination {
                    tls_name: host,
                    addrs,
                }),
                Ok(_) | Err(RouteError::NoHost(_)) => {}
                Err(e) => {
                    if out.is_empty() {
                        return Err(e);
                    }
                }
            }
        }
        if out.is_empty() {
            return Err(RouteError::NoHost(domain.to_string()));
        }
        Ok(out)
    }

    async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, RouteError> {
        match self.resolver.lookup_ip(format!("{host}.")).await {
            Ok(ips) => Ok(ips.iter().map(|ip| SocketAddr::new(ip, port)).collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => {
                Err(RouteError::NoHost(host.to_string()))
            }
            Err(e) => Err(RouteError::Temporary(e)),
        }
    }
}
