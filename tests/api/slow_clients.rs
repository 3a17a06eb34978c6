//! Slow and idle clients, over raw sockets as an attacker sends them: each is cut
//! off within its deadline, and nobody else waits for them.

use std::time::{Duration, Instant};

use stripe_sync::config::HttpTimeouts;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::{StripeSetup, TestApp, spawn_app_customized};

/// Short deadlines, so the tests take seconds.
const TIMEOUTS: HttpTimeouts = HttpTimeouts {
    header: Duration::from_secs(2),
    body: Duration::from_secs(2),
    idle: Duration::from_secs(3),
};
/// How long past a deadline the server may take to act on it.
const MARGIN: Duration = Duration::from_millis(1500);

async fn app() -> TestApp {
    spawn_app_customized(StripeSetup::Fake, |config| config.http_timeouts = TIMEOUTS).await
}

async fn connect(app: &TestApp) -> TcpStream {
    let address = app.address.trim_start_matches("http://");
    TcpStream::connect(address).await.expect("connects")
}

/// Reads until the server closes the connection (or fails it), within `within`;
/// returns what it answered meanwhile.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open past {within:?}"
    );
    String::from_utf8_lossy(&answer).to_string()
}

#[tokio::test]
async fn a_header_sent_a_byte_a_second_is_cut_off_while_healthz_answers_others() {
    let app = app().await;
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = connect(&app).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    let started = Instant::now();
    let trickle = async {
        // One more header byte a second on every connection, as slowloris does.
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            for stream in &mut slow {
                let _ = stream.write_all(b"X").await;
            }
        }
    };
    let probe = async {
        let client = reqwest::Client::new();
        let mut latencies = Vec::new();
        for _ in 0..40 {
            let sent = Instant::now();
            let response = client
                .get(format!("{}/healthz", app.address))
                .send()
                .await
                .expect("healthz answers");
            assert_eq!(response.status(), 200);
            latencies.push(sent.elapsed());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        latencies.sort();
        latencies[latencies.len() * 95 / 100]
    };

    let ((), p95) = tokio::join!(trickle, probe);

    assert!(p95 < Duration::from_millis(50), "/healthz p95 {p95:?}");
    for stream in &mut slow {
        let left = (TIMEOUTS.header + MARGIN).saturating_sub(started.elapsed());
        let answer = closed_within(stream, left.max(Duration::from_millis(100))).await;
        assert!(!answer.contains("200 OK"), "{answer}");
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = app().await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();

    let answer = closed_within(&mut stream, TIMEOUTS.idle + MARGIN).await;

    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        started.elapsed() >= TIMEOUTS.header,
        "kept open while idle for longer than the header deadline: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_cut_off() {
    let app = app().await;
    let mut stream = connect(&app).await;
    stream
        .write_all(
            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 1000\r\n\r\nemail=a",
        )
        .await
        .unwrap();

    let answer = closed_within(&mut stream, TIMEOUTS.body + MARGIN).await;

    assert!(!answer.contains(" 303 "), "nothing was signed in: {answer}");
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_before_it_arrives() {
    let app = app().await;
    for (path, length) in [("/stripe/webhook", 1_000_000_000u64), ("/login", 100_000)] {
        let mut stream = connect(&app).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {length}\r\n\r\n{{"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();

        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf))
            .await
            .expect("answered at once")
            .unwrap();

        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
