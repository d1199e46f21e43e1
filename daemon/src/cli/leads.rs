//! `leads archive` and `leads key`: the command line's adapter over [`crate::leads`] — where the
//! ids come from, the progress bar on a terminal, the report in words or JSON.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use super::commands::CliError;
use crate::leads::{
    self, BatchOutcome, BatchReport, KeyError, LeadsError, Outcome, Progress, Stop,
};

#[derive(Debug, Subcommand)]
pub enum LeadsCommand {
    /// Archive leads on the platform (POST /vicidial/leads/archive): insert into
    /// vicidial_list_archive, update it, delete from vicidial_list — in batches of at most 500,
    /// resumable. Exit codes: 0 done, 2 bad usage or ids, 3 key refused (401), 4 office hours
    /// (403), 5 some batches refused (400), 6 platform unreachable or failing, 1 other.
    Archive(ArchiveArgs),
    /// The platform's API key in the OS keyring (instead of --key-file).
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Store the key, read from standard input (never a flag: it would land in shell history).
    /// On Linux the kernel keyring keeps it until a reboot.
    Set,
    /// Remove the stored key.
    Forget,
}

#[derive(Debug, clap::Args)]
pub struct ArchiveArgs {
    /// The platform's address from Service Delivery, https://host[:port] (http only to this
    /// machine).
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// Lead ids, separated by commas (or spaces).
    #[arg(long, value_name = "ID,ID,…", conflicts_with_all = ["ids_file", "stdin"])]
    pub ids: Option<String>,
    /// A file of lead ids (one per line, or separated by commas or spaces); `-` reads standard
    /// input.
    #[arg(long, value_name = "FILE", conflicts_with = "stdin")]
    pub ids_file: Option<PathBuf>,
    /// `-`: read the ids from standard input.
    #[arg(value_name = "-", value_parser = ["-"])]
    pub stdin: Option<String>,
    /// Do not insert into vicidial_list_archive (the platform recommends inserting).
    #[arg(long)]
    pub no_insert: bool,
    /// Do not update archived rows from vicidial_list (the platform recommends updating).
    #[arg(long)]
    pub no_update: bool,
    /// Do not delete from vicidial_list (the leads stay in it).
    #[arg(long)]
    pub no_delete: bool,
    /// Check the ids and show the batches; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON document (batches, counts, why it stopped) instead of words, no progress bar.
    #[arg(long)]
    pub json: bool,
    /// The API key in a file readable only by you (else the key `leads key set` stored).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Trust this CA (PEM) for the platform's certificate instead of the system's (a file with
    /// one certificate that is not a CA: that certificate itself).
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Ids per request, 1 to 500.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=500))]
    pub batch_size: u16,
    /// How often a batch is tried again after no answer or a 5xx, waiting 1, 2, 4… s between.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// Forget what an earlier run of the same command did, and send every batch.
    #[arg(long)]
    pub fresh: bool,
}

pub fn run(command: LeadsCommand, data_dir: &std::path::Path) -> Result<(), CliError> {
    match command {
        LeadsCommand::Key {
            command: KeyCommand::Set,
        } => {
            let mut key = String::new();
            std::io::stdin()
                .take(4096)
                .read_to_string(&mut key)
                .map_err(|e| {
                    CliError::Usage(format!("cannot read the key from standard input: {e}"))
                })?;
            let key = key.trim();
            if key.is_empty() {
                return Err(LeadsError::from(KeyError::NoneOnStdin).into());
            }
            leads::keyring()
                .and_then(|vault| Ok(vault.put(leads::KEYRING_NAME, key)?))
                .map_err(LeadsError::from)?;
            println!("the platform's API key is stored in the OS keyring");
            Ok(())
        }
        LeadsCommand::Key {
            command: KeyCommand::Forget,
        } => {
            leads::keyring()
                .and_then(|vault| Ok(vault.remove(leads::KEYRING_NAME)?))
                .map_err(LeadsError::from)?;
            println!("the platform's API key is removed from the OS keyring");
            Ok(())
        }
        LeadsCommand::Archive(args) => archive(args, data_dir),
    }
}

fn archive(args: ArchiveArgs, data_dir: &std::path::Path) -> Result<(), CliError> {
    let ids_text = match (&args.ids, &args.ids_file, &args.stdin) {
        (Some(ids), _, _) => ids.clone(),
        (None, Some(file), _) if file.as_os_str() == "-" => stdin()?,
        (None, Some(file), _) => read_ids(
            std::fs::File::open(file)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?,
            &file.display().to_string(),
        )?,
        (None, None, Some(_)) => stdin()?,
        (None, None, None) => {
            return Err(CliError::Usage(
                "say which leads: --ids 1,2,3, --ids-file FILE, or - for standard input".into(),
            ));
        }
    };
    if args.no_insert && args.no_update && args.no_delete {
        return Err(CliError::Usage(
            "--no-insert, --no-update and --no-delete together leave nothing to do".into(),
        ));
    }
    let key = if args.dry_run {
        // Nothing is sent: no key needed, and none read.
        crate::config::Secret::new("-")
    } else {
        leads::read_key(args.key_file.as_deref()).map_err(LeadsError::from)?
    };
    let run = leads::Run {
        server: args.server,
        ids_text,
        steps: leads::client::Steps {
            insert_leads: !args.no_insert,
            update_leads: !args.no_update,
            delete_leads: !args.no_delete,
        },
        batch_size: usize::from(args.batch_size),
        retries: args.retries,
        first_retry: Duration::from_secs(1),
        dry_run: args.dry_run,
        fresh: args.fresh,
        ca_file: args.ca_file,
    };
    let mut progress: Box<dyn Progress> = if args.json {
        Box::new(Quiet)
    } else {
        Box::new(Terminal::new())
    };
    let runtime = super::commands::runtime()?;
    let outcome = runtime.block_on(leads::archive(
        &run,
        &key,
        &data_dir.join("leads"),
        progress.as_mut(),
    ))?;
    drop(progress);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome).unwrap_or_default()
        );
    } else {
        print!("{}", summary(&outcome, &run));
    }
    match outcome.exit_code {
        0 => Ok(()),
        code => Err(CliError::LeadsStopped(code)),
    }
}

/// The most ids text read (64 MiB: millions of ids); `--ids-file /dev/zero` is refused, not
/// read until memory runs out.
const MAX_IDS_TEXT: u64 = 64 * 1024 * 1024;

fn read_ids(from: impl Read, what: &str) -> Result<String, CliError> {
    let mut bytes = Vec::new();
    from.take(MAX_IDS_TEXT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::Usage(format!("cannot read the ids from {what}: {e}")))?;
    if bytes.len() as u64 > MAX_IDS_TEXT {
        return Err(CliError::Usage(format!(
            "{what} holds more than 64 MiB of ids; split it"
        )));
    }
    String::from_utf8(bytes).map_err(|_| CliError::Usage(format!("{what} is not text (UTF-8)")))
}

fn stdin() -> Result<String, CliError> {
    read_ids(std::io::stdin(), "standard input")
}

/// `--json`: nothing until the end.
struct Quiet;

impl Progress for Quiet {
    fn start(&mut self, _: usize) {}
    fn batch(&mut self, _: &BatchReport, _: usize) {}
    fn retry(&mut self, _: usize, _: &str, _: Duration) {}
}

/// A progress bar on standard error when it is a terminal (each batch's line printed above it,
/// on standard error too); otherwise each batch's line on standard output.
struct Terminal {
    bar: Option<indicatif::ProgressBar>,
}

impl Terminal {
    fn new() -> Self {
        Self { bar: None }
    }

    fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }
}

impl Progress for Terminal {
    fn start(&mut self, batches: usize) {
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(batches as u64);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} batches {msg}")
            {
                bar.set_style(style);
            }
            self.bar = Some(bar);
        }
    }

    fn batch(&mut self, report: &BatchReport, total: usize) {
        self.say(&batch_line(report, total));
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn retry(&mut self, batch: usize, error: &str, wait: Duration) {
        self.say(&format!(
            "batch {batch}: {}; trying again in {} s",
            for_terminal(error),
            wait.as_secs()
        ));
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// What the platform sent, made safe for a terminal: control characters (escape sequences
/// that could rewrite lines, set the title or the clipboard) shown escaped, and at most 2,000
/// characters. `--json` carries the body whole.
fn for_terminal(text: &str) -> String {
    const MAX: usize = 2000;
    let mut shown = String::new();
    for c in text.chars().take(MAX) {
        if c.is_control() {
            shown.extend(c.escape_debug());
        } else {
            shown.push(c);
        }
    }
    let more = text.chars().count().saturating_sub(MAX);
    if more > 0 {
        shown.push_str(&format!(" … ({more} more characters)"));
    }
    shown
}

fn counts_text(c: &leads::journal::Counts) -> String {
    format!(
        "selected {}, inserted {}, updated {}, deleted {}",
        c.select_count, c.insert_count, c.update_count, c.delete_count
    )
}

fn batch_line(report: &BatchReport, total: usize) -> String {
    let head = format!(
        "batch {}/{total} ({} ids, {} … {}):",
        report.batch, report.ids, report.first_id, report.last_id
    );
    match &report.outcome {
        BatchOutcome::Processed { counts } => format!("{head} processed — {}", counts_text(counts)),
        BatchOutcome::AlreadyDone {
            counts: Some(counts),
        } => format!("{head} done by an earlier run — {}", counts_text(counts)),
        BatchOutcome::AlreadyDone { counts: None } | BatchOutcome::DoneBeforeInterruption => {
            format!(
                "{head} processed by an earlier run that was interrupted before its answer (its ids are no longer in vicidial_list; counts unknown)"
            )
        }
        BatchOutcome::Rejected { raw, .. } => {
            format!(
                "{head} refused by the platform (400): {}",
                for_terminal(raw)
            )
        }
        BatchOutcome::NotSent => format!("{head} not sent"),
    }
}

fn summary(outcome: &Outcome, run: &leads::Run) -> String {
    let total = outcome.batches.len();
    let done = outcome
        .batches
        .iter()
        .filter(|b| {
            matches!(
                b.outcome,
                BatchOutcome::Processed { .. }
                    | BatchOutcome::AlreadyDone { .. }
                    | BatchOutcome::DoneBeforeInterruption
            )
        })
        .count();
    let first_pending = outcome
        .batches
        .iter()
        .find(|b| matches!(b.outcome, BatchOutcome::NotSent))
        .map_or(0, |b| b.batch);
    let resume = if done == 0 {
        format!(
            "run the same command again (journal {})",
            outcome.journal.display()
        )
    } else {
        format!(
            "run the same command again to resume at batch {first_pending}: the {done} batches done are not sent again (journal {})",
            outcome.journal.display()
        )
    };
    let mut text = String::new();
    if run.dry_run {
        text.push_str(&format!(
            "dry run: {total} batches for {}; nothing was sent\n",
            outcome.url
        ));
        return text;
    }
    match &outcome.stop {
        Some(Stop::KeyRefused { raw, .. }) => text.push_str(&format!(
            "stopped: the platform did not accept the API key (401): {}. Check the key with Service Delivery; {resume}\n",
            for_terminal(raw)
        )),
        Some(Stop::OfficeHours { raw, .. }) => text.push_str(&format!(
            "stopped: the platform refuses this during office hours (403): {}. The endpoint works outside office hours only: after they end, {resume}\n",
            for_terminal(raw)
        )),
        Some(Stop::Unreachable { error }) => text.push_str(&format!(
            "stopped: {} (tried again up to {} times). When the platform is back, {resume}\n",
            for_terminal(error),
            run.retries
        )),
        Some(Stop::Certificate { error }) => text.push_str(&format!(
            "stopped: the platform's certificate was refused: {}. If a private CA signed it, pass that CA with --ca-file; then {resume}\n",
            for_terminal(error)
        )),
        Some(Stop::Unexpected { status, body }) => text.push_str(&format!(
            "stopped: the platform answered {status}, which its contract does not have (is --server right?): {}\n",
            for_terminal(body)
        )),
        None => {}
    }
    // The safe delete keeps a lead whose archived row differs from it: say so, or a run that
    // "processed" everything would hide leads left in vicidial_list.
    let processed_ids: usize = outcome
        .batches
        .iter()
        .filter(|b| {
            matches!(
                b.outcome,
                BatchOutcome::Processed { .. } | BatchOutcome::AlreadyDone { counts: Some(_) }
            )
        })
        .map(|b| b.ids)
        .sum();
    let kept = (processed_ids as u64).saturating_sub(outcome.totals.delete_count);
    if run.steps.delete_leads && kept > 0 {
        text.push_str(&format!(
            "note: {kept} of these leads stay in vicidial_list: the platform deletes a lead only when its archived row matches it (with --no-update, a lead changed since it was archived is kept)\n"
        ));
    }
    text.push_str(&format!(
        "{done} of {total} batches processed; {}\n",
        counts_text(&outcome.totals)
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::for_terminal;

    #[test]
    fn what_the_platform_sends_cannot_drive_the_terminal() {
        let hostile = "ok\u{1b}]52;c;cGF3bmVk\u{7}\u{1b}[2K\r3 of 3 batches processed\n";
        let shown = for_terminal(hostile);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(
            shown.contains("\\u{1b}]52") && shown.contains("\\r3 of 3"),
            "{shown}"
        );
        let long = "x".repeat(5000);
        assert!(for_terminal(&long).ends_with(" … (3000 more characters)"));
    }
}
