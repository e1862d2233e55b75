//! Remote-write traffic shaped like a fleet of node_exporters, prepared
//! before any measurement.
//!
//! ```text
//! Workload ──► slots 0..series (host h, family f, label combination)
//!   │            grouped into chunks of samples_per_request / samples_per_series slots
//!   ▼
//! Pool::generate: per chunk (in parallel threads), per round:
//!   churn → new `pod` label for some slots (new series, counters restart)
//!   values → counters increase, gauges wander, constants stay
//!   encode RW 1.0 (labels inline) or RW 2.0 (symbol table) → snappy → Bytes
//!   ▼
//! Pool.chunks[chunk][round] = one ready-to-send request
//! ```
//!
//! A *slot* is one position of the fleet: host `h`, metric family `f`, one
//! label combination (cpu/mode, device, mountpoint …). A slot holds one series
//! at a time; *churn* gives a fraction of slots a new `pod` label value each
//! round, ending the old series and starting a new one, as a restarted
//! Kubernetes pod does. Slots are churned in a rotating contiguous window, so
//! the configured fraction is exact (up to rounding, carried over rounds).
//!
//! A *round* is `samples_per_series` consecutive scrapes of every slot; its
//! requests are one per chunk. Chunks never change membership, so sending a
//! chunk's rounds in order, one at a time, keeps every series' samples in
//! increasing time order whatever the concurrency (Prometheus rejects
//! out-of-order samples). This is how Prometheus's own remote-write shards
//! work: a series always goes through the same shard, in order.
//!
//! Timestamps are spaced `interval_ms` apart per series and end at `end_ms`
//! (the harness uses the current time), so every target accepts them.

use std::collections::HashMap;
use std::ops::Range;

use bytes::Bytes;
use ingest_gateway::Protocol;
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use schemas::{prompb, writev2};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Active series at any time (slots). Default 20,000.
    pub series: usize,
    /// Samples per request (Prometheus's `max_samples_per_send` is 2,000).
    /// Rounded down to a multiple of `samples_per_series`.
    pub samples_per_request: usize,
    /// Samples of each series in one request (consecutive scrapes). Default 1.
    pub samples_per_series: usize,
    /// Fraction of slots given a new series (new `pod` value) each round,
    /// 0.0–1.0. Default 0.
    pub churn: f64,
    /// Rounds to prepare: each round is `samples_per_series` scrapes of
    /// every slot.
    pub rounds: usize,
    /// Time between two scrapes of a series, milliseconds. Default 15,000.
    pub interval_ms: i64,
    /// Timestamp of the last scrape, milliseconds since the epoch.
    pub end_ms: i64,
    /// RW 1.0 or RW 2.0.
    pub protocol: Protocol,
    /// RW 2.0 only: send each series' metadata (type, help) as Prometheus
    /// does. Default true.
    pub v2_metadata: bool,
    /// Seed of every random choice: one seed, one pool, byte for byte.
    pub seed: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            series: 20_000,
            samples_per_request: 2_000,
            samples_per_series: 1,
            churn: 0.0,
            rounds: 10,
            interval_ms: 15_000,
            end_ms: 1_750_000_000_000,
            protocol: Protocol::V1,
            v2_metadata: true,
            seed: 42,
        }
    }
}

impl Workload {
    /// Series (slots) per request.
    pub fn series_per_request(&self) -> usize {
        (self.samples_per_request / self.samples_per_series.max(1)).max(1)
    }

    /// Number of chunks (requests per round).
    pub fn chunks(&self) -> usize {
        self.series.div_ceil(self.series_per_request())
    }

    /// Samples in one round (all chunks).
    pub fn samples_per_round(&self) -> u64 {
        (self.series * self.samples_per_series.max(1)) as u64
    }

    /// Timestamp of scrape `i` (0-based, over all rounds).
    pub fn scrape_ms(&self, i: usize) -> i64 {
        let total = (self.rounds * self.samples_per_series.max(1)) as i64;
        self.end_ms - (total - 1 - i as i64) * self.interval_ms
    }

    /// Slots churned before round `round` starts, counted over all rounds
    /// (the rotating window's end).
    fn churned_before(&self, round: usize) -> u64 {
        (self.churn.clamp(0.0, 1.0) * self.series as f64 * round as f64).floor() as u64
    }

    /// Generation of `slot` in `round`: how often it has been churned.
    pub fn generation(&self, slot: usize, round: usize) -> u64 {
        let c = self.churned_before(round);
        let (slot, s) = (slot as u64, self.series as u64);
        if c > slot { (c - slot - 1) / s + 1 } else { 0 }
    }
}

/// Kind of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (restarts at a new series).
    Counter,
    /// Wanders around a base value.
    Gauge,
    /// Never changes (sizes, `*_info`, boot time).
    Constant,
    /// The scrape time in seconds (`node_time_seconds`).
    Time,
}

/// The label combinations of a family.
#[derive(Debug, Clone, Copy)]
enum Dims {
    None,
    CpuMode,
    Disk,
    Net,
    Fs,
    Uname,
}

/// One node_exporter metric family.
#[derive(Debug)]
struct Family {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    dims: Dims,
    /// Counter: mean increase per second; gauge: base value; constant: value.
    scale: f64,
    /// Whether values are whole numbers (bytes, packets).
    integer: bool,
}

const fn fam(name: &'static str, kind: Kind, help: &'static str, dims: Dims, scale: f64, integer: bool) -> Family {
    Family { name, kind, help, dims, scale, integer }
}

use Kind::{Constant, Counter, Gauge, Time};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// node_exporter families of one host (161 series per host).
static FAMILIES: &[Family] = &[
    fam("node_cpu_seconds_total", Counter, "Seconds the CPUs spent in each mode.", Dims::CpuMode, 0.12, false),
    fam("node_disk_read_bytes_total", Counter, "The total number of bytes read successfully.", Dims::Disk, 2.0e6, true),
    fam(
        "node_disk_written_bytes_total",
        Counter,
        "The total number of bytes written successfully.",
        Dims::Disk,
        4.0e6,
        true,
    ),
    fam(
        "node_disk_reads_completed_total",
        Counter,
        "The total number of reads completed successfully.",
        Dims::Disk,
        150.0,
        true,
    ),
    fam(
        "node_disk_writes_completed_total",
        Counter,
        "The total number of writes completed successfully.",
        Dims::Disk,
        300.0,
        true,
    ),
    fam("node_disk_io_time_seconds_total", Counter, "Total seconds spent doing I/Os.", Dims::Disk, 0.05, false),
    fam("node_network_receive_bytes_total", Counter, "Network device statistic receive_bytes.", Dims::Net, 5.0e6, true),
    fam(
        "node_network_transmit_bytes_total",
        Counter,
        "Network device statistic transmit_bytes.",
        Dims::Net,
        3.0e6,
        true,
    ),
    fam(
        "node_network_receive_packets_total",
        Counter,
        "Network device statistic receive_packets.",
        Dims::Net,
        4000.0,
        true,
    ),
    fam(
        "node_network_transmit_packets_total",
        Counter,
        "Network device statistic transmit_packets.",
        Dims::Net,
        3000.0,
        true,
    ),
    fam("node_network_receive_errs_total", Counter, "Network device statistic receive_errs.", Dims::Net, 0.01, true),
    fam("node_network_transmit_errs_total", Counter, "Network device statistic transmit_errs.", Dims::Net, 0.01, true),
    fam("node_network_receive_drop_total", Counter, "Network device statistic receive_drop.", Dims::Net, 0.1, true),
    fam("node_network_transmit_drop_total", Counter, "Network device statistic transmit_drop.", Dims::Net, 0.05, true),
    fam("node_context_switches_total", Counter, "Total number of context switches.", Dims::None, 20_000.0, true),
    fam("node_intr_total", Counter, "Total number of interrupts serviced.", Dims::None, 15_000.0, true),
    fam("node_forks_total", Counter, "Total number of forks.", Dims::None, 30.0, true),
    fam("node_vmstat_pgfault", Counter, "/proc/vmstat information field pgfault.", Dims::None, 50_000.0, true),
    fam("node_vmstat_pgmajfault", Counter, "/proc/vmstat information field pgmajfault.", Dims::None, 2.0, true),
    fam("node_vmstat_pswpin", Counter, "/proc/vmstat information field pswpin.", Dims::None, 0.0, true),
    fam("node_vmstat_pswpout", Counter, "/proc/vmstat information field pswpout.", Dims::None, 0.0, true),
    fam(
        "node_memory_MemAvailable_bytes",
        Gauge,
        "Memory information field MemAvailable_bytes.",
        Dims::None,
        9.0 * GIB,
        true,
    ),
    fam("node_memory_MemFree_bytes", Gauge, "Memory information field MemFree_bytes.", Dims::None, 3.0 * GIB, true),
    fam(
        "node_memory_MemTotal_bytes",
        Constant,
        "Memory information field MemTotal_bytes.",
        Dims::None,
        16.0 * GIB,
        true,
    ),
    fam("node_memory_Buffers_bytes", Gauge, "Memory information field Buffers_bytes.", Dims::None, 0.3 * GIB, true),
    fam("node_memory_Cached_bytes", Gauge, "Memory information field Cached_bytes.", Dims::None, 5.5 * GIB, true),
    fam("node_memory_Active_bytes", Gauge, "Memory information field Active_bytes.", Dims::None, 7.0 * GIB, true),
    fam("node_memory_Inactive_bytes", Gauge, "Memory information field Inactive_bytes.", Dims::None, 4.0 * GIB, true),
    fam("node_memory_Dirty_bytes", Gauge, "Memory information field Dirty_bytes.", Dims::None, 2.0e6, true),
    fam("node_memory_SwapFree_bytes", Constant, "Memory information field SwapFree_bytes.", Dims::None, 0.0, true),
    fam("node_memory_SwapTotal_bytes", Constant, "Memory information field SwapTotal_bytes.", Dims::None, 0.0, true),
    fam("node_memory_Slab_bytes", Gauge, "Memory information field Slab_bytes.", Dims::None, 0.4 * GIB, true),
    fam("node_memory_Shmem_bytes", Gauge, "Memory information field Shmem_bytes.", Dims::None, 0.1 * GIB, true),
    fam(
        "node_filesystem_avail_bytes",
        Gauge,
        "Filesystem space available to non-root users in bytes.",
        Dims::Fs,
        60.0 * GIB,
        true,
    ),
    fam("node_filesystem_free_bytes", Gauge, "Filesystem free space in bytes.", Dims::Fs, 65.0 * GIB, true),
    fam("node_filesystem_size_bytes", Constant, "Filesystem size in bytes.", Dims::Fs, 100.0 * GIB, true),
    fam("node_filesystem_files", Constant, "Filesystem total file nodes.", Dims::Fs, 6_553_600.0, true),
    fam("node_filesystem_files_free", Gauge, "Filesystem total free file nodes.", Dims::Fs, 6_100_000.0, true),
    fam("node_filesystem_readonly", Constant, "Filesystem read-only status.", Dims::Fs, 0.0, true),
    fam("node_load1", Gauge, "1m load average.", Dims::None, 1.2, false),
    fam("node_load5", Gauge, "5m load average.", Dims::None, 1.1, false),
    fam("node_load15", Gauge, "15m load average.", Dims::None, 1.0, false),
    fam("node_procs_running", Gauge, "Number of processes in runnable state.", Dims::None, 3.0, true),
    fam("node_procs_blocked", Gauge, "Number of processes blocked waiting for I/O to complete.", Dims::None, 1.0, true),
    fam("node_filefd_allocated", Gauge, "File descriptor statistics: allocated.", Dims::None, 4_000.0, true),
    fam("node_filefd_maximum", Constant, "File descriptor statistics: maximum.", Dims::None, 9.2e18, true),
    fam("node_netstat_Tcp_CurrEstab", Gauge, "Statistic TcpCurrEstab.", Dims::None, 120.0, true),
    fam("node_sockstat_TCP_inuse", Gauge, "Number of TCP sockets in state inuse.", Dims::None, 60.0, true),
    fam("node_sockstat_sockets_used", Gauge, "Number of IPv4 sockets in use.", Dims::None, 400.0, true),
    fam("node_time_seconds", Time, "System time in seconds since epoch (1970).", Dims::None, 0.0, false),
    fam("node_boot_time_seconds", Constant, "Node boot time, in unixtime.", Dims::None, 1.7e9, true),
    fam("node_entropy_available_bits", Gauge, "Bits of available entropy.", Dims::None, 256.0, true),
    fam("node_network_up", Constant, "Value is 1 if operstate is 'up', 0 otherwise.", Dims::Net, 1.0, true),
    fam("node_network_mtu_bytes", Constant, "Network device property: mtu_bytes", Dims::Net, 1500.0, true),
    fam(
        "node_uname_info",
        Constant,
        "Labeled system information as provided by the uname system call.",
        Dims::Uname,
        1.0,
        true,
    ),
];

const CPUS: usize = 8;
const CPU_MODES: &[&str] = &["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"];
const DISKS: &[&str] = &["nvme0n1", "nvme1n1"];
const NET_DEVICES: &[&str] = &["eth0", "eth1", "lo"];
/// (device, fstype, mountpoint)
const FILESYSTEMS: &[(&str, &str, &str)] = &[
    ("/dev/nvme0n1p1", "ext4", "/"),
    ("/dev/nvme1n1", "xfs", "/data"),
    ("tmpfs", "tmpfs", "/run"),
    ("tmpfs", "tmpfs", "/dev/shm"),
];

/// Label combinations of a family: (name, value) pairs besides the host's.
fn combinations(dims: Dims) -> Vec<Vec<(&'static str, String)>> {
    match dims {
        Dims::None => vec![vec![]],
        Dims::CpuMode => (0..CPUS)
            .flat_map(|cpu| CPU_MODES.iter().map(move |m| vec![("cpu", cpu.to_string()), ("mode", (*m).to_owned())]))
            .collect(),
        Dims::Disk => DISKS.iter().map(|d| vec![("device", (*d).to_owned())]).collect(),
        Dims::Net => NET_DEVICES.iter().map(|d| vec![("device", (*d).to_owned())]).collect(),
        Dims::Fs => FILESYSTEMS
            .iter()
            .map(|(d, t, m)| {
                vec![("device", (*d).to_owned()), ("fstype", (*t).to_owned()), ("mountpoint", (*m).to_owned())]
            })
            .collect(),
        Dims::Uname => vec![vec![
            ("machine", "x86_64".to_owned()),
            ("release", "6.1.0-28-cloud-amd64".to_owned()),
            ("sysname", "Linux".to_owned()),
            ("version", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)".to_owned()),
        ]],
    }
}

/// One series position of a host: (family index, extra labels).
type HostSlot = (usize, Vec<(&'static str, String)>);

/// Every series position of one host, in a fixed order.
fn host_template() -> Vec<HostSlot> {
    FAMILIES.iter().enumerate().flat_map(|(i, f)| combinations(f.dims).into_iter().map(move |c| (i, c))).collect()
}

/// Series per host (the length of the node_exporter template).
pub fn series_per_host() -> usize {
    host_template().len()
}

/// A 64-bit mix (splitmix64's finaliser): spreads seeds and ids.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn base36(mut n: u64, min_len: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    while n > 0 || out.len() < min_len {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).expect("base36 digits are ASCII")
}

/// The labels of `slot` in its generation `generation`, sorted by name.
fn slot_labels(template: &[HostSlot], slot: usize, generation: u64) -> (usize, Vec<prompb::Label>) {
    let host = slot / template.len();
    let (family, extra) = &template[slot % template.len()];
    let ip = format!("10.{}.{}.{}", (host >> 16) & 255, (host >> 8) & 255, host & 255);
    // A DaemonSet pod name: a per-host stem plus the generation, so a
    // churned slot never reuses an old series.
    let pod = format!("node-exporter-{}{}", base36(mix(host as u64) % (36 * 36 * 36), 3), base36(generation, 2));
    let mut labels: Vec<prompb::Label> = [
        ("__name__", FAMILIES[*family].name.to_owned()),
        ("cluster", "prod-eu-west-1".to_owned()),
        ("instance", format!("{ip}:9100")),
        ("job", "node-exporter".to_owned()),
        ("namespace", "monitoring".to_owned()),
        ("node", format!("ip-{}", ip.replace('.', "-"))),
        ("pod", pod),
    ]
    .into_iter()
    .chain(extra.iter().cloned())
    .map(|(name, value)| prompb::Label { name: name.to_owned(), value })
    .collect();
    if let Dims::Uname = FAMILIES[*family].dims {
        labels.push(prompb::Label { name: "nodename".into(), value: format!("ip-{}", ip.replace('.', "-")) });
    }
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    (*family, labels)
}

/// The state of one slot while generating.
#[derive(Debug)]
struct Slot {
    family: usize,
    generation: u64,
    labels: Vec<prompb::Label>,
    value: f64,
    /// Counter: this series' rate factor; gauge: its base.
    param: f64,
}

/// One request's series, before encoding: what a decoder must give back.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedSeries {
    /// Labels, sorted by name.
    pub labels: Vec<prompb::Label>,
    /// `(timestamp_ms, value)`, increasing timestamps.
    pub samples: Vec<(i64, f64)>,
    /// Counter or gauge (for RW 2.0 metadata).
    pub kind: Kind,
    /// The family's help text.
    pub help: &'static str,
}

/// Generates the rounds of one chunk, in order.
#[derive(Debug)]
pub struct ChunkGenerator<'w> {
    workload: &'w Workload,
    template: Vec<HostSlot>,
    slots: Range<usize>,
    state: Vec<Slot>,
    round: usize,
    rng: StdRng,
}

impl<'w> ChunkGenerator<'w> {
    /// The generator of chunk `chunk` of `workload`, at round 0.
    pub fn new(workload: &'w Workload, chunk: usize) -> Self {
        let per = workload.series_per_request();
        let slots = chunk * per..((chunk + 1) * per).min(workload.series);
        Self {
            workload,
            template: host_template(),
            slots,
            state: Vec::new(),
            round: 0,
            rng: StdRng::seed_from_u64(mix(workload.seed ^ mix(chunk as u64))),
        }
    }

    fn new_slot(&self, slot: usize, generation: u64) -> Slot {
        let (family, labels) = slot_labels(&self.template, slot, generation);
        // Per-series parameters depend only on (seed, slot, generation).
        let mut rng = StdRng::seed_from_u64(mix(self.workload.seed ^ mix((slot as u64) << 20 ^ generation)));
        let f = &FAMILIES[family];
        let (value, param) = match f.kind {
            // A counter starts where a restarted exporter would: low.
            Counter => (f.scale * 600.0 * rng.random::<f64>(), rng.random_range(0.3..1.7)),
            Gauge => {
                let base = f.scale * rng.random_range(0.7..1.3);
                (base, base)
            }
            Constant | Time => (f.scale, f.scale),
        };
        Slot { family, generation, labels, value: round_value(f, value), param }
    }

    /// The next round's series, or `None` after the last round.
    pub fn next_round(&mut self) -> Option<Vec<GeneratedSeries>> {
        let w = self.workload;
        if self.round >= w.rounds {
            return None;
        }
        let k = w.samples_per_series.max(1);
        let interval_s = w.interval_ms as f64 / 1000.0;
        let mut out = Vec::with_capacity(self.slots.len());
        for (i, slot) in self.slots.clone().enumerate() {
            let generation = w.generation(slot, self.round);
            if self.state.len() <= i {
                let s = self.new_slot(slot, generation);
                self.state.push(s);
            } else if self.state[i].generation != generation {
                self.state[i] = self.new_slot(slot, generation);
            }
            let s = &mut self.state[i];
            let f = &FAMILIES[s.family];
            let mut samples = Vec::with_capacity(k);
            for j in 0..k {
                let ts = w.scrape_ms(self.round * k + j);
                s.value = match f.kind {
                    Counter => {
                        round_value(f, s.value + f.scale * s.param * interval_s * self.rng.random_range(0.5..1.5))
                    }
                    Gauge => {
                        let step = s.param * 0.02 * self.rng.random_range(-1.0..1.0);
                        round_value(f, (s.value + step).clamp(s.param * 0.5, s.param * 1.5))
                    }
                    Constant => s.value,
                    Time => ts as f64 / 1000.0 + self.rng.random_range(0.0..0.01),
                };
                samples.push((ts, s.value));
            }
            out.push(GeneratedSeries { labels: s.labels.clone(), samples, kind: f.kind, help: f.help });
        }
        self.round += 1;
        Some(out)
    }
}

fn round_value(f: &Family, v: f64) -> f64 {
    if f.integer { v.round() } else { (v * 100.0).round() / 100.0 }
}

/// Encodes series as an uncompressed RW 1.0 `WriteRequest`.
pub fn encode_v1(series: Vec<GeneratedSeries>) -> Vec<u8> {
    let req = prompb::WriteRequest {
        timeseries: series
            .into_iter()
            .map(|s| prompb::TimeSeries {
                labels: s.labels,
                samples: s.samples.into_iter().map(|(timestamp, value)| prompb::Sample { value, timestamp }).collect(),
                ..Default::default()
            })
            .collect(),
        metadata: Vec::new(),
    };
    req.encode_to_vec()
}

/// Encodes series as an uncompressed RW 2.0 `Request`: one symbol table per
/// request (first symbol ""), as Prometheus builds it.
pub fn encode_v2(series: Vec<GeneratedSeries>, metadata: bool) -> Vec<u8> {
    let mut symbols: Vec<String> = vec![String::new()];
    let mut index: HashMap<String, u32> = HashMap::from([(String::new(), 0)]);
    let mut intern = |s: &str| -> u32 {
        if let Some(r) = index.get(s) {
            return *r;
        }
        let r = symbols.len() as u32;
        symbols.push(s.to_owned());
        index.insert(s.to_owned(), r);
        r
    };
    let timeseries = series
        .into_iter()
        .map(|s| {
            let labels_refs = s.labels.iter().flat_map(|l| [intern(&l.name), intern(&l.value)]).collect();
            let meta = metadata.then(|| writev2::Metadata {
                r#type: match s.kind {
                    Counter => writev2::metadata::MetricType::Counter as i32,
                    Gauge | Constant | Time => writev2::metadata::MetricType::Gauge as i32,
                },
                help_ref: intern(s.help),
                unit_ref: 0,
            });
            writev2::TimeSeries {
                labels_refs,
                samples: s
                    .samples
                    .into_iter()
                    .map(|(timestamp, value)| writev2::Sample { value, timestamp, start_timestamp: 0 })
                    .collect(),
                metadata: meta,
                ..Default::default()
            }
        })
        .collect();
    writev2::Request { symbols, timeseries }.encode_to_vec()
}

/// Snappy block compression, as remote write uses.
pub fn compress(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).expect("snappy can compress any input that fits in memory")
}

/// Encodes and compresses series in `protocol`.
pub fn encode(protocol: Protocol, series: Vec<GeneratedSeries>, v2_metadata: bool) -> Vec<u8> {
    let raw = match protocol {
        Protocol::V1 => encode_v1(series),
        Protocol::V2 => encode_v2(series, v2_metadata),
    };
    compress(&raw)
}

/// The `Content-Type` of a remote-write request.
pub fn content_type(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::V1 => "application/x-protobuf;proto=prometheus.WriteRequest",
        Protocol::V2 => "application/x-protobuf;proto=io.prometheus.write.v2.Request",
    }
}

/// One ready-to-send request.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    /// Snappy-compressed protobuf.
    pub body: Bytes,
    /// Samples it carries.
    pub samples: u32,
}

/// Every request of a workload, encoded: `chunks[chunk][round]`.
#[derive(Debug)]
pub struct Pool {
    /// What was generated.
    pub workload: Workload,
    /// Requests per chunk, in round order.
    pub chunks: Vec<Vec<PreparedRequest>>,
}

impl Pool {
    /// Generates and encodes every request, chunks spread over `threads`.
    pub fn generate(workload: &Workload, threads: usize) -> Pool {
        let n = workload.chunks();
        let threads = threads.clamp(1, n.max(1));
        let mut chunks: Vec<Vec<PreparedRequest>> = (0..n).map(|_| Vec::new()).collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || {
                        (t..n)
                            .step_by(threads)
                            .map(|chunk| {
                                let mut generator = ChunkGenerator::new(workload, chunk);
                                let mut requests = Vec::with_capacity(workload.rounds);
                                while let Some(series) = generator.next_round() {
                                    let samples = series.iter().map(|s| s.samples.len() as u32).sum();
                                    let body = Bytes::from(encode(workload.protocol, series, workload.v2_metadata));
                                    requests.push(PreparedRequest { body, samples });
                                }
                                (chunk, requests)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                for (chunk, requests) in h.join().expect("a generator thread panicked") {
                    chunks[chunk] = requests;
                }
            }
        });
        Pool { workload: workload.clone(), chunks }
    }

    /// Total compressed bytes.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().flatten().map(|r| r.body.len()).sum()
    }

    /// Total samples.
    pub fn samples(&self) -> u64 {
        self.chunks.iter().flatten().map(|r| u64::from(r.samples)).sum()
    }

    /// Number of requests.
    pub fn requests(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }
}

/// One realistic request of `samples` samples (one per series, first round
/// of a fleet), compressed: the fixture of the decode benchmarks.
pub fn sample_request(protocol: Protocol, samples: usize, end_ms: i64) -> Vec<u8> {
    let workload =
        Workload { series: samples, samples_per_request: samples, rounds: 1, end_ms, protocol, ..Workload::default() };
    let series = ChunkGenerator::new(&workload, 0).next_round().expect("one round");
    encode(protocol, series, workload.v2_metadata)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use common::limits::IngestLimits;

    use super::*;

    fn small(protocol: Protocol) -> Workload {
        Workload {
            series: 1_000,
            samples_per_request: 300,
            samples_per_series: 1,
            rounds: 6,
            end_ms: 1_760_000_000_000,
            protocol,
            ..Workload::default()
        }
    }

    fn all_series(w: &Workload) -> Vec<Vec<GeneratedSeries>> {
        // rounds[round] = every series of that round, chunk after chunk
        let mut rounds = vec![Vec::new(); w.rounds];
        for c in 0..w.chunks() {
            let mut g = ChunkGenerator::new(w, c);
            for round in &mut rounds {
                round.extend(g.next_round().unwrap());
            }
            assert!(g.next_round().is_none());
        }
        rounds
    }

    fn key(labels: &[prompb::Label]) -> String {
        labels.iter().map(|l| format!("{}={};", l.name, l.value)).collect()
    }

    #[test]
    fn series_count_and_chunks_are_as_configured() {
        let w = small(Protocol::V1);
        assert_eq!(w.chunks(), 4);
        let rounds = all_series(&w);
        for round in &rounds {
            assert_eq!(round.len(), 1_000);
            let distinct: HashSet<String> = round.iter().map(|s| key(&s.labels)).collect();
            assert_eq!(distinct.len(), 1_000, "series within a round are distinct");
        }
        let pool = Pool::generate(&w, 2);
        assert_eq!(pool.requests(), 4 * 6);
        assert_eq!(pool.samples(), 6_000);
        assert!(pool.chunks.iter().flatten().all(|r| r.samples <= 300));
        assert!(series_per_host() > 150, "{}", series_per_host());
    }

    #[test]
    fn churn_replaces_the_configured_fraction() {
        let w = Workload { churn: 0.05, rounds: 5, ..small(Protocol::V1) };
        let rounds = all_series(&w);
        for pair in rounds.windows(2) {
            let before: HashSet<String> = pair[0].iter().map(|s| key(&s.labels)).collect();
            let after: HashSet<String> = pair[1].iter().map(|s| key(&s.labels)).collect();
            assert_eq!(after.len(), 1_000);
            assert_eq!(after.difference(&before).count(), 50, "5% of 1000 series are new each round");
        }
        // a churned series never comes back
        let all: HashSet<String> = rounds.iter().flatten().map(|s| key(&s.labels)).collect();
        assert_eq!(all.len(), 1_000 + 4 * 50);
        // churn over a full rotation: every slot churned exactly once
        let w = Workload { churn: 0.5, rounds: 3, ..small(Protocol::V1) };
        assert!((0..1_000).all(|slot| w.generation(slot, 2) == 1));
        assert!((0..1_000).all(|slot| w.generation(slot, 0) == 0));
        let no_churn = small(Protocol::V1);
        let rounds = all_series(&no_churn);
        assert!(rounds.windows(2).all(|p| p[0].iter().zip(&p[1]).all(|(a, b)| a.labels == b.labels)));
    }

    #[test]
    fn labels_are_sorted_and_valid() {
        let w = Workload { churn: 0.1, ..small(Protocol::V1) };
        let rounds = all_series(&w);
        let mut names = HashSet::new();
        for s in rounds.iter().flatten() {
            assert!(s.labels.windows(2).all(|p| p[0].name < p[1].name), "sorted, no duplicates: {:?}", s.labels);
            assert!(s.labels.iter().all(|l| !l.name.is_empty() && !l.value.is_empty()));
            assert_eq!(s.labels[0].name, "__name__");
            assert!(s.labels.iter().all(|l| l.name == "__name__"
                || l.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !l.name.starts_with("__")));
            names.insert(s.labels[0].value.clone());
        }
        assert!(names.contains("node_cpu_seconds_total") && names.contains("node_filesystem_avail_bytes"));
        // and PromLake's own validation accepts every series
        let body = sample_request(Protocol::V1, 2_000, 1_760_000_000_000);
        let raw = ingest_gateway::decompress(&body, usize::MAX).unwrap();
        let decoded = ingest_gateway::decode(Protocol::V1, &raw).unwrap();
        let v = ingest_gateway::validate(decoded.series, &IngestLimits::default(), 1_760_000_000_000);
        assert!(v.first_error.is_none(), "{:?}", v.first_error);
        assert_eq!(v.accepted.samples, 2_000);
    }

    #[test]
    fn requests_decode_back_to_the_generated_samples() {
        for protocol in [Protocol::V1, Protocol::V2] {
            let w = Workload { samples_per_series: 3, churn: 0.02, ..small(protocol) };
            let pool = Pool::generate(&w, 2);
            assert_eq!(pool.samples(), 1_000 * 3 * 6);
            for (c, requests) in pool.chunks.iter().enumerate() {
                let mut g = ChunkGenerator::new(&w, c);
                for r in requests {
                    let expected = g.next_round().unwrap();
                    // the real decoders: snappy, then PromLake's protobuf decode
                    let raw = snap::raw::Decoder::new().decompress_vec(&r.body).unwrap();
                    let decoded = ingest_gateway::decode(protocol, &raw).unwrap();
                    assert_eq!(decoded.series.len(), expected.len());
                    assert_eq!(r.samples as usize, expected.len() * 3);
                    for (d, e) in decoded.series.iter().zip(&expected) {
                        let labels: Vec<(&str, &str)> =
                            d.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
                        let want: Vec<(&str, &str)> =
                            e.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
                        assert_eq!(labels, want);
                        let samples: Vec<(i64, f64)> = d.samples.iter().map(|s| (s.timestamp_ms, s.value)).collect();
                        assert_eq!(samples, e.samples);
                    }
                    if protocol == Protocol::V2 {
                        // metadata rides along, one per series
                        assert_eq!(decoded.metadata.len(), expected.len());
                    } else {
                        let direct = prompb::WriteRequest::decode(raw.as_slice()).unwrap();
                        assert_eq!(direct.timeseries.len(), expected.len());
                    }
                }
            }
        }
    }

    #[test]
    fn timestamps_increase_per_series_across_rounds() {
        let w = Workload { samples_per_series: 2, churn: 0.03, interval_ms: 15_000, ..small(Protocol::V1) };
        let mut last: HashMap<String, i64> = HashMap::new();
        let mut counters: HashMap<String, f64> = HashMap::new();
        for round in all_series(&w) {
            for s in round {
                let k = key(&s.labels);
                for (ts, v) in &s.samples {
                    if let Some(prev) = last.insert(k.clone(), *ts) {
                        assert_eq!(*ts - prev, 15_000, "{k}");
                    }
                    if s.kind == Kind::Counter
                        && let Some(prev) = counters.insert(k.clone(), *v)
                    {
                        assert!(*v >= prev, "counter {k} went down");
                    }
                }
            }
        }
        assert_eq!(w.scrape_ms(w.rounds * 2 - 1), w.end_ms);
        assert_eq!(w.scrape_ms(0), w.end_ms - (6 * 2 - 1) * 15_000);
    }

    #[test]
    fn one_seed_gives_one_pool() {
        let w = small(Protocol::V2);
        let a = Pool::generate(&w, 1);
        let b = Pool::generate(&w, 3);
        let bodies = |p: &Pool| p.chunks.iter().flatten().map(|r| r.body.clone()).collect::<Vec<_>>();
        assert_eq!(bodies(&a), bodies(&b));
    }
}
