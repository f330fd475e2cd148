//! The live progress line (phase, elapsed / limit, ok/fail/info, active faults) and the summary
//! printed at the end of a run.

use crate::client::Stats;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Faults in effect right now, as the nemesis names them (`partition majority`, `pause n2`...).
pub type ActiveFaults = Arc<Mutex<BTreeSet<String>>>;

pub struct Progress {
    bar: ProgressBar,
    phase: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts redrawing every 200 ms on a terminal; elsewhere (CI logs) prints a plain line every
    /// 10 s. `quiet` draws nothing.
    pub fn start(
        name: &str,
        stats: Arc<Stats>,
        faults: ActiveFaults,
        limit: Duration,
        quiet: bool,
    ) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let bar = if quiet || !tty {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("template"));
            bar
        };
        let phase = Arc::new(Mutex::new("starting".to_string()));
        let start = Instant::now();
        let (b, p, name) = (bar.clone(), phase.clone(), name.to_string());
        let task = tokio::spawn(async move {
            let mut last_plain = Instant::now();
            loop {
                let line = render(&name, &p, &stats, &faults, start.elapsed(), limit);
                if tty {
                    b.set_message(line);
                    b.tick();
                } else if !quiet && last_plain.elapsed() >= Duration::from_secs(10) {
                    crate::errln!("{line}");
                    last_plain = Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Progress { bar, phase, task }
    }

    pub fn set_phase(&self, phase: &str) {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) = phase.to_string();
    }

    /// Prints a message above the progress line.
    pub fn println(&self, msg: &str) {
        if self.bar.is_hidden() {
            crate::errln!("{msg}");
        } else {
            self.bar.println(msg);
        }
    }

    pub fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

fn render(
    name: &str,
    phase: &Mutex<String>,
    stats: &Stats,
    faults: &ActiveFaults,
    elapsed: Duration,
    limit: Duration,
) -> String {
    let (ok, fail, info) = stats.counts();
    let faults = faults.lock().unwrap_or_else(|p| p.into_inner());
    let faults = if faults.is_empty() {
        "none".to_string()
    } else {
        faults.iter().cloned().collect::<Vec<_>>().join(", ")
    };
    let phase = phase.lock().unwrap_or_else(|p| p.into_inner());
    format!(
        "{name} [{phase}] {:.0}s/{:.0}s  ok {ok}  fail {fail}  info {info}  faults: {faults}",
        elapsed.as_secs_f64(),
        limit.as_secs_f64()
    )
}
