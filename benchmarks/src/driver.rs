//! Sends a prepared [`Pool`] to a remote-write URL over `C` concurrent HTTP
//! connections and measures what the server acknowledged.
//!
//! ```text
//! ready queue of chunks ──► worker 1..C: pop chunk c, POST chunks[c][next_round[c]]
//!        ▲                                     │ wait for the answer
//!        └────── push c back (if rounds remain) ◄┘ count 2xx samples, latency
//! ```
//!
//! A chunk is never in flight twice, so each series' samples reach the server
//! in time order (the server may otherwise reject them as out of order),
//! while up to `C` different chunks are in flight at once: Prometheus's
//! remote-write sharding, with chunks as shards.
//!
//! Runs stop after a duration or a number of requests; the cursor stays in
//! the [`Driver`], so a warm-up run followed by a measured run continues
//! with the next, never-sent rounds.
//!
//! Acknowledged samples: for a 2xx answer carrying RW 2.0's
//! `X-Prometheus-Remote-Write-Samples-Written` header, its value; for any
//! other 2xx, the samples of the request. Non-2xx answers are counted, not
//! retried (the chunk moves on to its next round).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use ingest_gateway::Protocol;

use crate::loadgen::{Pool, content_type};

/// When a run stops.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// After this long (requests in flight are finished and counted).
    Duration(Duration),
    /// After this many requests.
    Requests(u64),
}

/// The outcome of one run.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Wall time of the run.
    pub elapsed: Duration,
    /// 2xx answers.
    pub ok: u64,
    /// Non-2xx answers.
    pub rejected: u64,
    /// Connection errors and timeouts.
    pub errors: u64,
    /// Samples acknowledged (2xx).
    pub samples_acked: u64,
    /// Samples sent (every request that got any answer or error).
    pub samples_sent: u64,
    /// Compressed bytes sent.
    pub bytes_sent: u64,
    /// Latency of every answered request (2xx or not), unsorted.
    pub latencies: Vec<Duration>,
    /// Every chunk ran out of prepared rounds before the limit.
    pub exhausted: bool,
    /// The first non-2xx or error, for diagnosis.
    pub first_failure: Option<String>,
}

impl Report {
    /// Acknowledged samples per second.
    pub fn samples_per_sec(&self) -> f64 {
        self.samples_acked as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile (0.0–1.0) of request latency.
    pub fn latency(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let mut l = self.latencies.clone();
        l.sort_unstable();
        let i = ((l.len() as f64 * q).ceil() as usize).clamp(1, l.len()) - 1;
        l[i]
    }
}

#[derive(Debug)]
struct Cursor {
    ready: VecDeque<usize>,
    next_round: Vec<usize>,
    in_flight: usize,
}

/// Sends one pool to one URL; keeps its place between runs.
#[derive(Debug)]
pub struct Driver {
    client: reqwest::Client,
    url: String,
    protocol: Protocol,
    pool: Arc<Pool>,
    cursor: Arc<Mutex<Cursor>>,
}

impl Driver {
    /// A driver sending `pool` to `url` with up to `concurrency` connections.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(pool: Arc<Pool>, url: &str, concurrency: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        let n = pool.chunks.len();
        let cursor = Cursor { ready: (0..n).collect(), next_round: vec![0; n], in_flight: 0 };
        Ok(Self {
            client,
            url: url.to_owned(),
            protocol: pool.workload.protocol,
            pool,
            cursor: Arc::new(Mutex::new(cursor)),
        })
    }

    /// Requests not yet sent.
    pub fn remaining(&self) -> usize {
        let c = self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        self.pool.chunks.iter().zip(&c.next_round).map(|(rounds, next)| rounds.len() - next).sum()
    }

    /// Sends with `concurrency` workers until `limit`; returns what happened.
    pub async fn run(&self, concurrency: usize, limit: Limit) -> Report {
        let started = Instant::now();
        let deadline = match limit {
            Limit::Duration(d) => Some(started + d),
            Limit::Requests(_) => None,
        };
        let budget = match limit {
            Limit::Requests(n) => n,
            Limit::Duration(_) => u64::MAX,
        };
        let issued = Arc::new(AtomicU64::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency.max(1) {
            let worker = Worker {
                client: self.client.clone(),
                url: self.url.clone(),
                content_type: content_type(self.protocol),
                version: match self.protocol {
                    Protocol::V1 => "0.1.0",
                    Protocol::V2 => "2.0.0",
                },
                pool: self.pool.clone(),
                cursor: self.cursor.clone(),
                issued: issued.clone(),
                budget,
                deadline,
            };
            workers.spawn(worker.run());
        }
        let mut total = Report::default();
        while let Some(joined) = workers.join_next().await {
            let r = joined
                .unwrap_or_else(|e| Report { first_failure: Some(format!("worker failed: {e}")), ..Report::default() });
            total.ok += r.ok;
            total.rejected += r.rejected;
            total.errors += r.errors;
            total.samples_acked += r.samples_acked;
            total.samples_sent += r.samples_sent;
            total.bytes_sent += r.bytes_sent;
            total.latencies.extend(r.latencies);
            total.exhausted |= r.exhausted;
            if total.first_failure.is_none() {
                total.first_failure = r.first_failure;
            }
        }
        total.elapsed = started.elapsed();
        total
    }
}

struct Worker {
    client: reqwest::Client,
    url: String,
    content_type: &'static str,
    version: &'static str,
    pool: Arc<Pool>,
    cursor: Arc<Mutex<Cursor>>,
    issued: Arc<AtomicU64>,
    budget: u64,
    deadline: Option<Instant>,
}

enum Next {
    Send(usize, usize),
    Wait,
    Done { exhausted: bool },
}

impl Worker {
    fn next(&self) -> Next {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Next::Done { exhausted: false };
        }
        let mut c = self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        match c.ready.pop_front() {
            Some(chunk) => {
                if self.issued.fetch_add(1, Ordering::Relaxed) >= self.budget {
                    c.ready.push_front(chunk);
                    return Next::Done { exhausted: false };
                }
                let round = c.next_round[chunk];
                c.next_round[chunk] += 1;
                c.in_flight += 1;
                Next::Send(chunk, round)
            }
            // Every chunk is in flight elsewhere (more workers than chunks),
            // or every chunk has sent its last round.
            None if c.in_flight > 0 => Next::Wait,
            None => Next::Done { exhausted: true },
        }
    }

    fn finish(&self, chunk: usize) {
        let mut c = self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        c.in_flight -= 1;
        if c.next_round[chunk] < self.pool.chunks[chunk].len() {
            c.ready.push_back(chunk);
        }
    }

    async fn run(self) -> Report {
        let mut r = Report::default();
        loop {
            let (chunk, round) = match self.next() {
                Next::Send(chunk, round) => (chunk, round),
                Next::Wait => {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                    continue;
                }
                Next::Done { exhausted } => {
                    r.exhausted = exhausted;
                    return r;
                }
            };
            let request = &self.pool.chunks[chunk][round];
            let started = Instant::now();
            let sent = self
                .client
                .post(&self.url)
                .header("Content-Type", self.content_type)
                .header("Content-Encoding", "snappy")
                .header("X-Prometheus-Remote-Write-Version", self.version)
                .body(request.body.clone())
                .send()
                .await;
            r.samples_sent += u64::from(request.samples);
            r.bytes_sent += request.body.len() as u64;
            match sent {
                Ok(response) => {
                    let status = response.status();
                    let written = response
                        .headers()
                        .get("X-Prometheus-Remote-Write-Samples-Written")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    // Read the body so the connection can be reused.
                    let body = response.bytes().await.unwrap_or_default();
                    r.latencies.push(started.elapsed());
                    if status.is_success() {
                        r.ok += 1;
                        r.samples_acked += written.unwrap_or(u64::from(request.samples));
                    } else {
                        r.rejected += 1;
                        if r.first_failure.is_none() {
                            r.first_failure = Some(format!(
                                "HTTP {status}: {}",
                                String::from_utf8_lossy(&body[..body.len().min(500)])
                            ));
                        }
                    }
                }
                Err(e) => {
                    r.errors += 1;
                    if r.first_failure.is_none() {
                        r.first_failure = Some(format!("request error: {e}"));
                    }
                }
            }
            self.finish(chunk);
        }
    }
}
