//! The bundled engine in this process: the server API `dkimctl serve`
//! uses (minus the privilege drop) on a loopback TCP port or a unix socket
//! in a temporary root, and a tiny DNS server for it to ask.

use std::net::SocketAddr;
use std::time::Duration;

use dkimctl::config::Source;
use dkimctl::config::model::Socket;
use dkimctl::engine::server::{self, Control, Reloader, StdListener};
use dkimctl::engine::{Shared, State};
use dkimctl::host::Root;
use tokio::sync::{mpsc, oneshot};

use super::TempRoot;
use super::knot::Published;

/// An engine running in this process.
pub struct Engine {
    pub addr: String,
    pub control: mpsc::Sender<Control>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Engine {
    pub async fn start(root: &TempRoot, unix: bool) -> Engine {
        let r = Root::new(root.path());
        let source = Source::resolve(&r, None);
        let config = server::load_config(&source).expect("valid dkim.toml");
        let listener = if unix {
            let sock = root.join("run/dkimctl/milter.sock");
            std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
            server::bind(&Socket::Unix(sock), None, &config).expect("bind unix")
        } else {
            StdListener::Tcp(std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        };
        let listener = listener.into_tokio().unwrap();
        let addr = listener.local_addr();
        let state = State::build(config, &r, None, false).expect("state");
        let (tx, rx) = mpsc::channel(4);
        let reloader = Reloader { root: r, source };
        let task = tokio::spawn(server::run(
            vec![listener],
            Shared::new(state),
            Some(reloader),
            rx,
        ));
        Engine {
            addr,
            control: tx,
            task,
        }
    }

    pub async fn reload(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.control.send(Control::Reload(Some(tx))).await.unwrap();
        rx.await.unwrap()
    }

    pub async fn stop(self) {
        self.control.send(Control::Shutdown).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("drained in time")
            .unwrap()
            .unwrap();
    }
}

/// A tiny authoritative DNS server on loopback UDP answering TXT queries
/// from a table (what `engine.nameservers` points at in tests).
pub async fn dns_server(records: &[Published]) -> SocketAddr {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let records: Vec<(String, String)> = records
        .iter()
        .map(|r| (r.name.to_lowercase(), r.value.clone()))
        .collect();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let q = &buf[..n];
            if n < 12 {
                continue;
            }
            // Question: labels from offset 12.
            let mut i = 12;
            let mut labels = Vec::new();
            while i < n && q[i] != 0 {
                let len = q[i] as usize;
                labels.push(String::from_utf8_lossy(&q[i + 1..i + 1 + len]).to_lowercase());
                i += 1 + len;
            }
            let qend = i + 5; // zero byte, type, class
            let name = labels.join(".");
            let mut resp = Vec::new();
            resp.extend_from_slice(&q[0..2]);
            let found = records.iter().find(|(n, _)| *n == name);
            resp.extend_from_slice(if found.is_some() {
                &[0x84, 0x00]
            } else {
                &[0x84, 0x03]
            });
            resp.extend_from_slice(&[0, 1, 0, u8::from(found.is_some()), 0, 0, 0, 0]);
            resp.extend_from_slice(&q[12..qend]);
            if let Some((_, txt)) = found {
                let mut rdata = Vec::new();
                for chunk in txt.as_bytes().chunks(255) {
                    rdata.push(chunk.len() as u8);
                    rdata.extend_from_slice(chunk);
                }
                resp.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60]);
                resp.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
                resp.extend_from_slice(&rdata);
            }
            let _ = sock.send_to(&resp, peer).await;
        }
    });
    addr
}
