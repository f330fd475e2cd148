//! Membership changes during a run (`--spare N`, `--nemesis membership`): which nodes are members
//! now ([`Members`], which the clients route by), carrying out the schedule's membership steps as
//! `reconfigure` requests (docs/node-contract.md) to a running member, and settling the last one
//! before the final reads, which go to the final members.
//!
//! Steps run on a track of their own beside the other faults, so a change can meet a partition,
//! a pause or a kill. A step never hangs the run: each request has a deadline, a node that
//! answers `not-supported` (code 10) ends the membership steps of the run, and every step that
//! did not take effect is a `fault-failed` event in the history and a warning of the run.

use crate::cluster::{ClusterPlan, NodeState};
use crate::run_context::RunContext;
use crate::schedule::{Fault, FaultKind, Schedule};
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub mod figures;

/// How long one `reconfigure` request may go unanswered before the next member is asked.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one step may take over all the members it asks.
const STEP_DEADLINE: Duration = Duration::from_secs(8);

/// The nodes that are members now, as the harness last saw a change in force.
pub struct Members {
    ids: Vec<String>,
    current: RwLock<Vec<usize>>,
    /// Held by a step while it runs, and by [`settle`]; what the steps left behind.
    track: tokio::sync::Mutex<Track>,
    warnings: Mutex<Vec<String>>,
}

#[derive(Default)]
struct Track {
    /// The configuration the last step asked for, when it is not known to be in force.
    unsettled: Option<Vec<String>>,
    /// Set by the first node that answered `not-supported`: no more steps are tried.
    unsupported: Option<String>,
    steps_ok: usize,
    steps_failed: usize,
}

impl Members {
    /// Every node a member.
    pub fn new(ids: Vec<String>) -> Members {
        Members {
            current: RwLock::new((0..ids.len()).collect()),
            ids,
            track: Default::default(),
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// The members from now on (names not among the nodes are ignored).
    pub fn set(&self, names: &[String]) {
        let idx: Vec<usize> = (0..self.ids.len())
            .filter(|i| names.contains(&self.ids[*i]))
            .collect();
        if !idx.is_empty() {
            *self.current.write().unwrap_or_else(|p| p.into_inner()) = idx;
        }
    }

    /// The members' indices among the nodes, in node order.
    pub fn indices(&self) -> Vec<usize> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn names(&self) -> Vec<String> {
        self.indices()
            .into_iter()
            .map(|i| self.ids[i].clone())
            .collect()
    }

    /// The node client slot `slot` talks to now: the members take turns, so the clients of a
    /// removed node move to the members left.
    pub fn route(&self, slot: usize) -> usize {
        let cur = self.current.read().unwrap_or_else(|p| p.into_inner());
        cur[slot % cur.len()]
    }

    /// What the run should be warned about (steps that did not take effect), for results.json.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn warn(&self, w: String) {
        tracing::warn!("{w}");
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(w);
    }

    /// `N changes in force, M did not take effect`, for the summary; `None` if none was tried.
    pub async fn summary(&self) -> Option<String> {
        let t = self.track.lock().await;
        if t.steps_ok + t.steps_failed == 0 {
            return None;
        }
        let mut s = format!(
            "{} changes in force, {} did not take effect; final members {}",
            t.steps_ok,
            t.steps_failed,
            self.names().join(",")
        );
        if let Some(why) = &t.unsupported {
            s += &format!(" ({why})");
        }
        Some(s)
    }
}

/// The plan's nodes outside its first configuration.
pub fn spares(plan: &ClusterPlan) -> Vec<String> {
    let Some(members) = &plan.members else {
        return Vec::new();
    };
    (plan.nodes.iter())
        .filter(|n| !members.contains(&n.id))
        .map(|n| n.id.clone())
        .collect()
}

/// A replayed schedule's spares must be this run's (its steps add and remove them).
pub fn check_replay_spares(s: &Schedule, spares: &[String], dir: &Path) -> Result<()> {
    if s.spares != spares {
        bail!(
            "--replay {}: schedule.json has spare nodes [{}] but this run has [{}] (check --spare)",
            dir.display(),
            s.spares.join(","),
            spares.join(",")
        );
    }
    Ok(())
}

/// Carries out the schedule's membership steps, relative to the history's time zero. Aborting
/// it never cuts a step short (each runs in a task of its own); [`settle`] waits for it.
pub async fn run(ctx: Arc<RunContext>, schedule: Arc<Schedule>) {
    let start = tokio::time::Instant::from_std(ctx.history.start());
    let steps = schedule.windows.iter();
    for w in steps.filter(|w| w.fault.kind() == FaultKind::Membership) {
        tokio::time::sleep_until(start + Duration::from_secs_f64(w.start_s)).await;
        let (ctx, fault) = (ctx.clone(), w.fault.clone());
        let _ = tokio::spawn(async move { step(&ctx, &fault).await }).await;
    }
}

async fn step(ctx: &RunContext, fault: &Fault) {
    let Fault::Membership {
        change,
        add,
        remove,
        members,
    } = fault
    else {
        return;
    };
    let mut track = ctx.members.track.lock().await;
    if track.unsupported.is_some() {
        tracing::info!(
            "membership step {} skipped: not supported",
            fault.describe()
        );
        return;
    }
    ctx.history.record_nemesis(
        "start-membership",
        json!({"change": change, "add": add, "remove": remove, "members": members,
               "label": fault.describe()}),
    );
    ctx.active_faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(fault.describe());
    reconfigure(ctx, &mut track, members).await;
    ctx.active_faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&fault.describe());
}

/// How a member answered one `reconfigure`.
#[derive(Debug, PartialEq)]
pub enum Answer {
    Ok,
    /// Code 10: this node cannot change the membership at all.
    NotSupported(String),
    /// A definite error (nothing changed): code and text.
    Refused(i64, String),
    /// No answer in time, a broken connection, or code 0 / 11: ask another member.
    Indefinite(String),
}

/// Asks the running members, in turn, for `members` until one puts it in force or the step's
/// deadline passes; records the outcome.
async fn reconfigure(ctx: &RunContext, track: &mut Track, members: &[String]) {
    let deadline = tokio::time::Instant::now() + STEP_DEADLINE;
    let mut asked = Vec::new();
    let mut last = String::from("no running member to ask");
    while tokio::time::Instant::now() < deadline {
        let mut progressed = false;
        for i in ctx.members.indices() {
            if ctx.cluster.state(i).await != NodeState::Running {
                continue;
            }
            let id = ctx.cluster.plan.nodes[i].id.clone();
            let addr = ctx.cluster.plan.nodes[i].client;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            progressed = true;
            if !asked.contains(&id) {
                asked.push(id.clone());
            }
            match ask(addr, members, ASK_TIMEOUT.min(left)).await {
                Answer::Ok => return in_force(ctx, track, members, &id),
                Answer::NotSupported(text) => return not_supported(ctx, track, &id, &text),
                Answer::Refused(code, text) => {
                    let why = format!("refused with code {code}: {text}");
                    return failed(ctx, track, members, &id, &why, false);
                }
                Answer::Indefinite(why) => last = format!("{id}: {why}"),
            }
        }
        if !progressed {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let why = format!(
        "no member put it in force within {STEP_DEADLINE:?} (asked {}; last: {last})",
        asked.join(",")
    );
    failed(ctx, track, members, &asked.join(","), &why, true);
}

fn in_force(ctx: &RunContext, track: &mut Track, members: &[String], via: &str) {
    ctx.members.set(members);
    track.unsettled = None;
    track.steps_ok += 1;
    ctx.history.record_nemesis(
        "stop-membership",
        json!({"members": members, "via": via, "outcome": "ok"}),
    );
}

fn not_supported(ctx: &RunContext, track: &mut Track, via: &str, text: &str) {
    let why = format!(
        "node {via} does not support membership changes (not-supported, code 10: {text}); \
         the run's membership steps are skipped"
    );
    record_failure(ctx, via, &why, "not-supported");
    ctx.members.warn(format!("membership: {why}"));
    track.unsupported = Some(why);
    track.steps_failed += 1;
}

/// A step that did not take effect; `indefinite` ones may still do, so [`settle`] asks again.
fn failed(
    ctx: &RunContext,
    track: &mut Track,
    members: &[String],
    via: &str,
    why: &str,
    indefinite: bool,
) {
    let outcome = if indefinite { "no-answer" } else { "refused" };
    record_failure(ctx, via, why, outcome);
    ctx.members.warn(format!(
        "membership: the change to {} did not take effect: {why}",
        members.join(",")
    ));
    track.unsettled = indefinite.then(|| members.to_vec());
    track.steps_failed += 1;
}

fn record_failure(ctx: &RunContext, via: &str, why: &str, outcome: &str) {
    ctx.history.record_nemesis(
        "fault-failed",
        json!({"step": "membership", "node": via, "error": why}),
    );
    ctx.history.record_nemesis(
        "stop-membership",
        json!({"via": via, "outcome": outcome, "error": why}),
    );
}

/// For the final phase, after the heal: waits for a step under way; when the last one got no
/// answer, asks for its configuration once more (asking again is harmless), so the final reads
/// go to members the nodes agree on. Returns the final members.
pub async fn settle(ctx: &RunContext) -> Vec<String> {
    let mut track = ctx.members.track.lock().await;
    if let Some(members) = track.unsettled.take() {
        if track.unsupported.is_none() {
            ctx.history.record_nemesis(
                "start-membership",
                json!({"change": "settle", "members": members,
                       "label": format!("settle {}", members.join(","))}),
            );
            reconfigure(ctx, &mut track, &members).await;
        }
    }
    ctx.members.names()
}

/// One `reconfigure` request on a connection of its own.
pub async fn ask(addr: std::net::SocketAddr, members: &[String], timeout: Duration) -> Answer {
    let req = json!({"type": "reconfigure", "members": members, "msg_id": 1});
    let work = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (r, mut w) = stream.into_split();
        w.write_all(format!("{req}\n").as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut line = String::new();
        BufReader::new(r)
            .take(1 << 20)
            .read_line(&mut line)
            .await
            .map_err(|e| format!("read: {e}"))?;
        serde_json::from_str::<Value>(&line).map_err(|_| {
            let shown: String = line.chars().take(200).collect();
            format!("not a JSON reply: {shown:?}")
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Err(_) => Answer::Indefinite(format!("no answer within {timeout:?}")),
        Ok(Err(why)) => Answer::Indefinite(why),
        Ok(Ok(reply)) => classify(&reply),
    }
}

/// The contract's reading of a reply to `reconfigure`.
pub fn classify(reply: &Value) -> Answer {
    let text = || {
        let t = reply.get("text").and_then(Value::as_str).unwrap_or("");
        t.to_string()
    };
    match reply.get("type").and_then(Value::as_str) {
        Some("reconfigure_ok") => Answer::Ok,
        Some("error") => match reply.get("code").and_then(Value::as_i64) {
            Some(10) => Answer::NotSupported(text()),
            Some(c @ (0 | 11)) => Answer::Indefinite(format!("code {c}: {}", text())),
            Some(c) => Answer::Refused(c, text()),
            None => Answer::Refused(-1, format!("an error without a code: {reply}")),
        },
        _ => Answer::Refused(-1, format!("an unexpected reply: {reply}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_read_per_the_contract() {
        let r = |s: &str| classify(&serde_json::from_str(s).unwrap());
        assert_eq!(
            r(r#"{"type":"reconfigure_ok","in_reply_to":1}"#),
            Answer::Ok
        );
        assert!(matches!(
            r(r#"{"type":"error","code":10,"text":"x"}"#),
            Answer::NotSupported(_)
        ));
        assert!(matches!(
            r(r#"{"type":"error","code":0}"#),
            Answer::Indefinite(_)
        ));
        assert!(matches!(
            r(r#"{"type":"error","code":1,"text":"n9"}"#),
            Answer::Refused(1, _)
        ));
        assert!(matches!(r(r#"{"type":"read_ok"}"#), Answer::Refused(..)));
    }

    #[test]
    fn clients_of_a_removed_node_move_to_the_members_left() {
        let m = Members::new(["n1", "n2", "n3", "n4"].map(String::from).to_vec());
        m.set(&["n1".into(), "n2".into(), "n3".into()]);
        assert_eq!(
            (0..6).map(|s| m.route(s)).collect::<Vec<_>>(),
            [0, 1, 2, 0, 1, 2]
        );
        m.set(&["n1".into(), "n3".into(), "n4".into()]);
        assert_eq!((0..3).map(|s| m.route(s)).collect::<Vec<_>>(), [0, 2, 3]);
        assert_eq!(m.names(), ["n1", "n3", "n4"]);
    }
}
