//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// PromLake: a Prometheus-compatible, multi-tenant metrics service (what
/// Amazon Managed Service for Prometheus offers, as software you run).
#[derive(Debug, Parser)]
#[command(name = "promlake", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run PromLake: by default every component in one process, with the
    /// embedded on-disk log under the data directory.
    Serve(ServeArgs),
    /// Manage principals (who may sign requests) and their IAM-style
    /// policies, through a running PromLake.
    #[command(subcommand)]
    Principal(PrincipalCommand),
    /// Create, rotate and revoke access keys, through a running PromLake.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Rules files, offline.
    #[command(subcommand)]
    Rules(RulesCommand),
}

/// `promlake rules …`.
#[derive(Debug, clap::Subcommand)]
pub enum RulesCommand {
    /// Unit tests for rules, in `promtool test rules`'s file format and
    /// with its output and exit code (1 when a test failed).
    Test {
        /// Only the test groups whose name matches one of these regular
        /// expressions.
        #[arg(long)]
        run: Vec<String>,
        /// The unit-test files.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
}

/// `promlake principal …`.
#[derive(Debug, clap::Subcommand)]
pub enum PrincipalCommand {
    /// Create a principal with policies.
    Create {
        /// Its name: 1–64 of `A-Za-z0-9+=,.@_-`.
        name: String,
        /// Policies: built-in names and/or policy documents.
        #[command(flatten)]
        policies: PolicyArgs,
        /// How to reach PromLake.
        #[command(flatten)]
        connection: Connection,
    },
    /// Replace a principal's policies.
    SetPolicies {
        /// The principal.
        name: String,
        /// The new policies (built-in names and/or documents).
        #[command(flatten)]
        policies: PolicyArgs,
        /// How to reach PromLake.
        #[command(flatten)]
        connection: Connection,
    },
    /// Show a principal: its policies and access keys (never secrets).
    Show {
        /// The principal.
        name: String,
        /// How to reach PromLake.
        #[command(flatten)]
        connection: Connection,
    },
}

/// `promlake key …`.
#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Create an access key for a principal; prints its id and secret (the
    /// only time the secret is shown).
    Create {
        /// The principal.
        principal: String,
        /// How to reach PromLake.
        #[command(flatten)]
        connection: Connection,
    },
    /// Replace an access key: a new one for the same principal, the old one
    /// revoked at once.
    Rotate {
        /// The access key id to replace.
        access_key_id: String,
        /// How to reach PromLake.
        #[command(flatten)]
        connection: Connection,
    },
    /// Revoke an access key: refused from then on.
    Revoke {
        /// The access key id.
        access_key_id: String,
        /// How to reach PromLake.
        #[command(flatten)]
        connection: Connection,
    },
}

/// Policies given on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// A built-in policy: AdministratorAccess, AmazonPrometheusFullAccess,
    /// AmazonPrometheusRemoteWriteAccess, AmazonPrometheusQueryAccess.
    /// Repeatable.
    #[arg(long = "policy")]
    pub builtin: Vec<String>,
    /// A file holding an IAM policy document (JSON: Version, Statement with
    /// Effect, Action, Resource). Repeatable.
    #[arg(long = "policy-file")]
    pub files: Vec<PathBuf>,
}

/// How the subcommands reach PromLake and sign their requests.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The data directory of the server: its `credentials` (the key pair
    /// that signs, unless `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`
    /// are set) and `config` (endpoint and region) are read.
    #[arg(long, env = "PROMLAKE_DATA_DIR", default_value = "promlake-data")]
    pub data_dir: PathBuf,
    /// PromLake's URL; default the `endpoint_url` of `<data-dir>/config`.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// The region to sign for; default the `region` of `<data-dir>/config`.
    #[arg(long)]
    pub region: Option<String>,
}

/// Flags of `promlake serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Directory holding all state: the embedded log (`log/`), the lake
    /// (`lake/`), credentials and config for the AWS CLI. Created if missing.
    #[arg(long, env = "PROMLAKE_DATA_DIR", default_value = "promlake-data")]
    pub data_dir: PathBuf,

    /// Address to serve HTTP on (the AMP control-plane API, remote write,
    /// `/metrics`). Port 0 picks a free port; the chosen address is printed.
    #[arg(long, env = "PROMLAKE_LISTEN", default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,

    /// How requests are authenticated: `sigv4` (AWS Signature Version 4,
    /// service `aps`) or `none` (no authentication: local trials only).
    #[arg(long, env = "PROMLAKE_AUTH", value_enum, default_value_t = AuthMode::Sigv4)]
    pub auth: AuthMode,

    /// Which components this process runs: `all` (one process), or one role
    /// of a scaled-out deployment (roles need a shared Kafka log).
    #[arg(long, env = "PROMLAKE_ROLE", value_enum, default_value_t = Role::All)]
    pub role: Role,

    /// TOML config file: the log (`embedded` or `kafka://…`), the lake URL,
    /// region and account, limits and their per-workspace overrides.
    #[arg(long, env = "PROMLAKE_CONFIG")]
    pub config: Option<PathBuf>,

    /// The URL other PromLake processes reach this one at (scaled out,
    /// Alertmanager API requests are forwarded to the alerting process
    /// running the workspace): this process's own address, not a load
    /// balancer's. Default: `http://` and the address served on, with this
    /// host's name when serving on every interface.
    #[arg(long, env = "PROMLAKE_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
}

/// Authentication modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// AWS Signature Version 4 with IAM-style policies.
    Sigv4,
    /// No authentication at all.
    None,
}

/// Process roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Every component.
    All,
    /// Control-plane API and remote-write ingestion.
    Gateway,
    /// Stream workers (log → lake, rules).
    Worker,
    /// PromQL query service.
    Query,
    /// Alertmanager.
    Alerting,
}

impl Role {
    /// Whether this role runs the ingest gateway and control-plane API.
    pub fn runs_gateway(self) -> bool {
        matches!(self, Role::All | Role::Gateway)
    }

    /// Whether this role runs the workspaces' Alertmanagers.
    pub fn runs_alerting(self) -> bool {
        matches!(self, Role::All | Role::Alerting)
    }

    /// Whether this role runs the stream workers (log → lake).
    pub fn runs_workers(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }
}
