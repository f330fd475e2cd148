//! `harness serve [DIR]`: a results browser over a store, on loopback by default. Routes: `/` lists
//! every run and suite run (filters by test, variant, verdict, date; tick runs to compare),
//! `/store/<path>` serves a file of the store, `/compare?run=A&run=B...` builds the comparison
//! page of those runs on demand, `/trend` the trend page of every suite run in the store.
//!
//! Every path a request names is confined to the store: a `..`, an absolute path, or a symlink
//! that leads out of the store is refused (403). Pages are built on blocking threads; nothing in
//! the store is written.

use crate::error::SetupError;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use report::browse_page::{Filters, SuiteRow};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The results store.
    #[arg(default_value = "results")]
    pub dir: PathBuf,
    /// The address to listen on; anything but loopback lets other machines read the store.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// 0 picks a free port (printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
}

struct Store {
    /// Canonical, so that a resolved path can be checked against it.
    root: PathBuf,
    /// Compare pages are built in `<prefix>-compare-N` and removed once read, so a server that
    /// is killed leaves at most the one being built.
    scratch: PathBuf,
    next: AtomicU64,
}

type Shared = Arc<Store>;

pub fn run(args: ServeArgs) -> Result<u8, SetupError> {
    let fail = |e: String| SetupError::new("harness serve", anyhow::anyhow!(e));
    let root = args
        .dir
        .canonicalize()
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| fail(format!("{}: no such results store", args.dir.display())))?;
    let scratch = std::env::temp_dir().join(format!("harness-serve-{}", std::process::id()));
    let store = Arc::new(Store {
        root,
        scratch,
        next: AtomicU64::new(0),
    });
    let rt = tokio::runtime::Runtime::new().map_err(|e| fail(format!("async runtime: {e}")))?;
    let r = rt.block_on(async {
        let addr = std::net::SocketAddr::new(args.host, args.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        crate::outln!(
            "harness serve: http://{local}/ (store {})",
            store.root.display()
        );
        axum::serve(listener, router(store))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| e.to_string())
    });
    r.map(|()| 0).map_err(fail)
}

fn router(store: Shared) -> Router {
    Router::new()
        .route("/", get(list))
        .route("/store/{*path}", get(file))
        .route("/compare", get(compare))
        .route("/trend", get(trend))
        .with_state(store)
}

/// An error page with a status.
fn refuse(status: StatusCode, why: impl Into<String>) -> Response {
    (status, why.into()).into_response()
}

/// `rel` inside the store, or why not: 403 for a path that leaves it (by `..`, an absolute path
/// or a symlink), 404 for one that does not exist.
fn confine(root: &Path, rel: &str) -> Result<PathBuf, (StatusCode, String)> {
    let p = Path::new(rel);
    if rel.contains('\0') || p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err((StatusCode::FORBIDDEN, format!("{rel}: leaves the store")));
    }
    let real = root
        .join(p)
        .canonicalize()
        .map_err(|_| (StatusCode::NOT_FOUND, format!("{rel}: not in the store")))?;
    if !real.starts_with(root) {
        return Err((
            StatusCode::FORBIDDEN,
            format!("{rel}: a link out of the store"),
        ));
    }
    Ok(real)
}

/// Runs blocking page work off the async threads.
async fn blocking(f: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn list(State(s): State<Shared>, Query(f): Query<Filters>) -> Response {
    blocking(move || Html(list_html(&s.root, &f)).into_response()).await
}

fn list_html(root: &Path, f: &Filters) -> String {
    let (mut runs, mut bad) = report::index::scan_all(root);
    let (nights, bad_summaries) =
        crate::trend::nights::find(&[root.to_path_buf()]).unwrap_or_else(|e| {
            (
                Vec::new(),
                vec![report::trend_page::Unreadable {
                    path: ".".into(),
                    reason: e,
                }],
            )
        });
    let mut suites = Vec::new();
    for n in nights.iter().rev() {
        let rel = n
            .dir()
            .strip_prefix(root)
            .unwrap_or(n.dir())
            .display()
            .to_string();
        let (inner, inner_bad) = report::index::scan_all(n.dir());
        runs.extend(inner.into_iter().map(|mut e| {
            e.rel = format!("{rel}/{}", e.rel);
            e
        }));
        bad.extend(
            inner_bad
                .into_iter()
                .map(|(r, why)| (format!("{rel}/{r}"), why)),
        );
        let count = |o: &str| n.runs.iter().filter(|r| r.outcome == o).count();
        suites.push(SuiteRow {
            rel,
            suite: n.suite.clone(),
            started: n.started.clone(),
            runs: n.runs.len(),
            counts: format!(
                "{}/{}/{}/{}",
                count("pass"),
                count("fail"),
                count("unknown"),
                count("error")
            ),
        });
    }
    bad.extend(bad_summaries.into_iter().map(|u| (u.path, u.reason)));
    runs.sort_by(|a, b| b.started.cmp(&a.started).then_with(|| a.rel.cmp(&b.rel)));
    let shown: Vec<_> = runs.iter().filter(|e| f.keeps(e)).collect();
    report::browse_page::list_page(&runs, &shown, &bad, &suites, f)
}

async fn file(State(s): State<Shared>, UrlPath(rel): UrlPath<String>) -> Response {
    let path = match confine(&s.root, &rel) {
        Ok(p) if p.is_file() => p,
        Ok(_) => return refuse(StatusCode::NOT_FOUND, format!("{rel}: not a file")),
        Err(r) => return r.into_response(),
    };
    let kind = match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("md" | "jsonl" | "log" | "edn" | "txt" | "xml") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("{rel}: {e}")),
    }
}

async fn compare(State(s): State<Shared>, Query(q): Query<Vec<(String, String)>>) -> Response {
    let mut dirs = Vec::new();
    for (k, rel) in q {
        if k != "run" {
            continue;
        }
        match confine(&s.root, &rel) {
            Ok(d) if d.is_dir() => dirs.push(d),
            Ok(_) => return refuse(StatusCode::NOT_FOUND, format!("{rel}: not a run folder")),
            Err(r) => return r.into_response(),
        }
    }
    if dirs.len() < 2 {
        return refuse(StatusCode::BAD_REQUEST, "tick at least two runs to compare");
    }
    blocking(move || {
        let n = s.next.fetch_add(1, Ordering::SeqCst);
        let out = PathBuf::from(format!("{}-compare-{n}", s.scratch.display()));
        let page = report::compare::write_comparison(&dirs, &out)
            .and_then(|p| std::fs::read_to_string(p).map_err(|e| e.to_string()));
        let _ = std::fs::remove_dir_all(&out);
        match page {
            // The page links each run's report by file path; here it is served under /store/.
            Ok(html) => {
                let from = format!("href=\"file://{}/", s.root.display());
                Html(html.replace(&from, "href=\"/store/")).into_response()
            }
            Err(e) => refuse(StatusCode::UNPROCESSABLE_ENTITY, e),
        }
    })
    .await
}

async fn trend(State(s): State<Shared>) -> Response {
    blocking(move || {
        let root = s.root.clone();
        let page =
            crate::trend::nights::find(std::slice::from_ref(&root)).and_then(|(nights, bad)| {
                let t =
                    crate::trend::build::build(&nights, bad, crate::trend::band::DEFAULT, &root);
                report::trend_page::render(&t)
            });
        match page {
            // Report links are relative to the store's root, which is /store/ here.
            Ok(html) => {
                Html(html.replacen("<head>", "<head><base href=\"/store/\">", 1)).into_response()
            }
            Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e),
        }
    })
    .await
}
