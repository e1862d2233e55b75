//! `promlake`: parses the command line, sets up logging, runs.

use clap::Parser;
use promlake::cli::{Cli, Command, RulesCommand};

/// mimalloc instead of glibc's malloc: under remote-write load glibc spent
/// about half of PromLake's CPU in malloc/free (`_int_malloc`,
/// `malloc_consolidate`), see benchmarks/RESULTS.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Offline commands print what their format says, logs only when asked.
    let default_filter = if matches!(cli.command, Command::Rules(_)) { "off" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve(args) => promlake::run(args).await,
        Command::Principal(command) => promlake::identity::principal(command).await,
        Command::Key(command) => promlake::identity::key(command).await,
        Command::Rules(RulesCommand::Test { run, files }) => {
            let passed = rules_test::run(&files, &run, &mut std::io::stdout(), &mut std::io::stderr()).await;
            std::process::exit(if passed { 0 } else { 1 });
        }
    }
}
