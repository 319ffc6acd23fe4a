//! The engine's counters and its OpenMetrics endpoint (`[engine] metrics =
//! "127.0.0.1:9177"`, off by default; loopback only, enforced by
//! validation).
//!
//! Counted: messages per result and domain (a configured domain, or
//! `other`: a label per sender-chosen domain would let remote senders grow
//! the process's memory without end), failures per kind, the time
//! spent at end of message (where signing and verification happen — the
//! body has streamed into the hash already, and with the no-reply flags it
//! is the only step the MTA waits for), and the age of each active key in
//! days, a nudge to rotate; with `[rotation] every`, when each domain's
//! next rotation is due, and the result of the last DNS publish (read from
//! the state `dns publish` and `rotate --auto` keep). The text format is
//! OpenMetrics 1.0, which Prometheus scrapes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::session::Event;
use super::{Shared, State};
use crate::config::types::Date;
use crate::dns::state::DnsState;
use crate::host::Root;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 2.0];

/// The counters, shared by every connection.
#[derive(Debug, Default)]
pub struct Metrics {
    messages: Mutex<BTreeMap<(&'static str, String), u64>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Metrics {
    /// Counts one message's outcome, under the domain label `state` gives
    /// it ([`State::metrics_label`]).
    pub fn record(&self, e: &Event, state: &State) {
        if e.result.is_empty() {
            return;
        }
        let label = state.metrics_label(&e.domain);
        let mut m = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((e.result, label.to_string())).or_default() += 1;
        drop(m);
        if !e.error.is_empty() {
            let mut errs = self.errors.lock().unwrap_or_else(|p| p.into_inner());
            *errs.entry(e.error).or_default() += 1;
        }
    }

    /// Records the time one end-of-message step took.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// The OpenMetrics text for the current state.
    pub fn render(&self, state: &State) -> String {
        self.render_with(state, None)
    }

    /// [`Metrics::render`], plus the rotation's gauges when the root is
    /// known: the day each domain's keys rotate next (`[rotation] every`)
    /// and the last DNS publish's result (from the state `dns publish` and
    /// `rotate --auto` keep).
    pub fn render_with(&self, state: &State, root: Option<&Root>) -> String {
        let mut s = String::new();
        s.push_str("# TYPE dkimctl_messages counter\n# HELP dkimctl_messages Messages by result and domain.\n");
        for ((result, domain), n) in self
            .messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                s,
                "dkimctl_messages_total{{result=\"{result}\",domain=\"{}\"}} {n}",
                escape(domain)
            );
        }
        s.push_str("# TYPE dkimctl_errors counter\n# HELP dkimctl_errors Failures by kind (on_failure cases).\n");
        for (kind, n) in self.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(s, "dkimctl_errors_total{{kind=\"{kind}\"}} {n}");
        }
        s.push_str("# TYPE dkimctl_eom_seconds histogram\n# HELP dkimctl_eom_seconds Time spent at end of message (signing, verification).\n");
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                s,
                "dkimctl_eom_seconds_bucket{{le=\"{le}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(s, "dkimctl_eom_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            s,
            "dkimctl_eom_seconds_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(s, "dkimctl_eom_seconds_count {count}");
        s.push_str("# TYPE dkimctl_key_age_days gauge\n# HELP dkimctl_key_age_days Days since the key was created (dkim.toml `created`).\n");
        let today = Date::today();
        for d in &state.config.domains {
            for k in d.signing_keys() {
                let Some(created) = k.created else {
                    continue;
                };
                let age = created.days_until(today);
                let _ = writeln!(
                    s,
                    "dkimctl_key_age_days{{domain=\"{}\",selector=\"{}\"}} {age}",
                    escape(&d.name),
                    escape(&k.selector)
                );
            }
        }
        s.push_str("# TYPE dkimctl_settings info\n# HELP dkimctl_settings The settings generation served (dkimctl plan compares it with dkim.toml).\n");
        let _ = writeln!(
            s,
            "dkimctl_settings_info{{generation=\"{}\"}} 1",
            escape(&state.generation)
        );
        if let Some(root) = root {
            rotation_gauges(&mut s, state, root);
        }
        s.push_str("# EOF\n");
        s
    }
}

/// Seconds since 1970 at the start of a day (UTC).
fn day_start(d: Date) -> i64 {
    d.days_since_epoch() * 86_400
}

fn rotation_gauges(s: &mut String, state: &State, root: &Root) {
    let config = &state.config;
    if config.rotation.every.is_some() {
        s.push_str("# TYPE dkimctl_key_next_rotation_timestamp_seconds gauge\n# HELP dkimctl_key_next_rotation_timestamp_seconds When `rotate --auto` starts the domain's next rotation ([rotation] every).\n");
        for d in config.domains.iter().filter(|d| d.key_from.is_none()) {
            if let Some(due) = crate::rotate::next_rotation(config, root, d) {
                let _ = writeln!(
                    s,
                    "dkimctl_key_next_rotation_timestamp_seconds{{domain=\"{}\"}} {}",
                    escape(&d.name),
                    day_start(due)
                );
            }
        }
    }
    if let Some(last) = DnsState::read(root).last_publish {
        s.push_str("# TYPE dkimctl_dns_publish_ok gauge\n# HELP dkimctl_dns_publish_ok 1 when the last DNS publish made DNS match dkim.toml, 0 when it failed.\n");
        let _ = writeln!(s, "dkimctl_dns_publish_ok {}", u8::from(last.ok));
        s.push_str("# TYPE dkimctl_dns_publish_timestamp_seconds gauge\n# HELP dkimctl_dns_publish_timestamp_seconds When the last DNS publish ran.\n");
        let _ = writeln!(s, "dkimctl_dns_publish_timestamp_seconds {}", last.time);
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `GET /metrics` on a loopback listener until the task is dropped.
/// Anything else gets 404; requests are read up to 8 KiB.
pub async fn serve(listener: tokio::net::TcpListener, shared: Shared, root: Root) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        let root = root.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let mut len = 0;
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while len < buf.len() {
                    let n = stream.read(&mut buf[len..]).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    len += n;
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let ok = buf[..len].starts_with(b"GET /metrics ")
                || buf[..len].starts_with(b"GET /metrics?");
            let (status, ctype, body) = if ok {
                let state = shared.current();
                (
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    shared.metrics().render_with(&state, Some(&root)),
                )
            } else {
                (
                    "404 Not Found",
                    "text/plain",
                    "not found: try /metrics\n".to_string(),
                )
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verifying state with example.com configured.
    fn state() -> State {
        let text = "[service]\nmode = \"verify\"\nauthserv_id = \"mx.example.net\"\n\
                    [[domain]]\nname = \"example.com\"\nselector = \"s1\"\n[mta]\nkind = \"none\"\n";
        let source = crate::config::Source {
            real: "/nonexistent/dkim.toml".into(),
            host: "/etc/dkimctl/dkim.toml".into(),
            display: "dkim.toml".into(),
        };
        let config = crate::config::parse(text, &source).config.expect("valid");
        State::build_with(config, &crate::host::Root::new("/nonexistent"), None, false)
            .expect("state")
    }

    #[test]
    fn counts_by_result_domain_and_error() {
        let m = Metrics::default();
        let st = state();
        for _ in 0..2 {
            m.record(
                &Event {
                    result: "signed",
                    domain: "example.com".into(),
                    ..Event::default()
                },
                &st,
            );
        }
        m.record(
            &Event {
                result: "tempfail",
                error: "key_unreadable",
                ..Event::default()
            },
            &st,
        );
        m.observe(Duration::from_micros(700));
        let msgs = m.messages.lock().unwrap();
        assert_eq!(msgs[&("signed", "example.com".to_string())], 2);
        drop(msgs);
        assert_eq!(m.errors.lock().unwrap()["key_unreadable"], 1);
        assert_eq!(m.buckets[0].load(Ordering::Relaxed), 0);
        assert_eq!(m.buckets[1].load(Ordering::Relaxed), 1);
    }

    /// Issue 15, item 3: a sender's own `d=` never becomes a label.
    #[test]
    fn domains_not_configured_share_one_label() {
        let m = Metrics::default();
        let st = state();
        for i in 0..1000 {
            m.record(
                &Event {
                    result: "verified",
                    domain: format!("sender-{i}.example"),
                    ..Event::default()
                },
                &st,
            );
        }
        let msgs = m.messages.lock().unwrap();
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert_eq!(msgs[&("verified", "other".to_string())], 1000);
        drop(msgs);
        assert!(
            m.render(&st)
                .contains("result=\"verified\",domain=\"other\"} 1000")
        );
    }
}
