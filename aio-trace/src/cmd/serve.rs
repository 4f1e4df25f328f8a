//! `aio-trace serve`: traces until Ctrl-C or SIGTERM and serves `/metrics`
//! (Prometheus text format) from its own thread, so a scrape never delays
//! draining the ring buffer.

use std::{
    collections::{BTreeMap, HashMap},
    convert::Infallible,
    pin::Pin,
    process::ExitCode,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use aio_trace::{
    blockdev::DevNames,
    cgroup::CgroupNames,
    export::prometheus::{Metrics, MetricsSink, SeriesLabels, proc_comm, to_classic_text},
    loader::{CounterTable, LossTable, TraceConfig, Tracer},
    session::{Session, UserLosses},
};
use anyhow::Context as _;
use futures_util::FutureExt as _;
use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Body, Bytes, Frame, SizeHint},
    header::HeaderValue,
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{sync::Notify, task::AbortHandle};

use crate::{
    cli::{SeriesLabel, ServeArgs},
    cmd::common::{stop_signal, trace_config},
};

/// What a scrape reads besides the metrics the records feed.
struct Scrape {
    metrics: Arc<Metrics>,
    counters: Option<CounterTable>,
    kernel_losses: Option<LossTable>,
    user_losses: Arc<UserLosses>,
    comms: Arc<Mutex<HashMap<u32, String>>>,
    /// The light tier's sampling as it adapts (`--budget`).
    sample_every: Option<Arc<std::sync::atomic::AtomicU64>>,
}

impl Scrape {
    fn render(&self) -> Result<String, std::fmt::Error> {
        if let Some(every) = &self.sample_every {
            self.metrics
                .set_sample_every(every.load(std::sync::atomic::Ordering::Relaxed));
        }
        let counters = self
            .counters
            .as_ref()
            .map(CounterTable::snapshot)
            .unwrap_or_default();
        let ops = self
            .counters
            .as_ref()
            .map(CounterTable::op_snapshot)
            .unwrap_or_default();
        let losses = self.user_losses.add_to(
            self.kernel_losses
                .as_ref()
                .map(LossTable::snapshot)
                .unwrap_or_default(),
        );
        let comm_of = |pid: u32| {
            let mut comms = self.comms.lock().unwrap_or_else(|e| e.into_inner());
            comms
                .entry(pid)
                .or_insert_with(|| proc_comm(pid).unwrap_or_else(|| "unknown".into()))
                .clone()
        };
        self.metrics
            .update_kernel(&counters, &ops, comm_of, &losses);
        self.metrics.render()
    }
}

/// Connections served at once. Past it, a new connection takes the place of
/// the oldest one that is between requests (idle or still sending its request
/// head), so clients that merely hold connections cannot lock a scraper out.
const MAX_CONNECTIONS: usize = 64;

/// The pause after an accept failure such as running out of file descriptors:
/// the pending connection stays queued, so retrying at once would spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// At most one message about failing accepts per this long: every idle
/// connection closed to make room is followed by another failure, so a
/// message per failure would flood stderr.
const ACCEPT_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// How long connections may stay silent or open, from the command line.
#[derive(Clone, Copy)]
struct Timeouts {
    header: Duration,
    connection: Duration,
}

/// Whether a connection is answering a request: one that is cannot be closed
/// to make room without cutting a response short.
struct Open {
    busy: Arc<AtomicBool>,
    task: AbortHandle,
}

/// The open connections, oldest first, and a wake-up for the accept loop when
/// one closes or finishes a response.
struct Connections {
    open: Mutex<BTreeMap<u64, Open>>,
    changed: Notify,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Open>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a new connection can be taken now, in its own slot or in an
    /// idle one's.
    fn can_take(&self) -> bool {
        let open = self.lock();
        open.len() < MAX_CONNECTIONS || open.values().any(|c| !c.busy.load(Ordering::Relaxed))
    }

    fn full(&self) -> bool {
        self.lock().len() >= MAX_CONNECTIONS
    }

    /// Closes the oldest connection that is between requests; false if every
    /// one is answering. Its socket closes when the runtime next drops the
    /// aborted task.
    fn close_oldest_idle(&self) -> bool {
        let mut open = self.lock();
        let Some(id) = open
            .iter()
            .find(|(_, c)| !c.busy.load(Ordering::Relaxed))
            .map(|(id, _)| *id)
        else {
            return false;
        };
        // Out of the table now, so that it is neither counted nor chosen again
        // before its task is dropped.
        if let Some(c) = open.remove(&id) {
            c.task.abort();
        }
        true
    }
}

/// Held by a connection's task: removes it from the table when the task ends.
struct Slot {
    id: u64,
    connections: Arc<Connections>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.id);
        self.connections.changed.notify_one();
    }
}

/// Marks its connection busy from the moment a request head is in until the
/// response body has been handed to the socket.
struct Busy {
    flag: Arc<AtomicBool>,
    connections: Arc<Connections>,
}

impl Busy {
    fn new(flag: Arc<AtomicBool>, connections: Arc<Connections>) -> Self {
        flag.store(true, Ordering::Relaxed);
        Self { flag, connections }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.flag.store(false, Ordering::Relaxed);
        self.connections.changed.notify_one();
    }
}

/// A response body that keeps its connection marked busy while it is sent.
struct Answer {
    body: Full<Bytes>,
    _busy: Busy,
}

impl Body for Answer {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

fn respond(scrape: &Scrape, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = Response::new(Full::new(Bytes::from_static(
            b"only GET and HEAD are served\n",
        )));
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        let headers = response.headers_mut();
        headers.insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        headers.insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain"),
        );
        return response;
    }
    let openmetrics = req
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    // HEAD renders too, so that its Content-Length is the one GET would send;
    // hyper leaves the body out of a response to HEAD.
    let (status, content_type, body) = match req.uri().path() {
        "/metrics" => match scrape.render() {
            Ok(text) if openmetrics => (
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text,
            ),
            Ok(text) => (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                to_classic_text(&text),
            ),
            Err(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                "cannot render the metrics\n".into(),
            ),
        },
        "/" => (
            StatusCode::OK,
            "text/plain",
            "aio-trace: metrics are on /metrics\n".into(),
        ),
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// Serves one connection until it closes, stays silent past the header
/// timeout, or outlives the connection timeout.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    scrape: Arc<Scrape>,
    busy: Arc<AtomicBool>,
    connections: Arc<Connections>,
    timeouts: Timeouts,
) {
    let service = service_fn(move |req| {
        let guard = Busy::new(busy.clone(), connections.clone());
        let response = respond(&scrape, &req).map(|body| Answer { body, _busy: guard });
        async move { Ok::<_, Infallible>(response) }
    });
    let mut builder = http1::Builder::new();
    // The header timeout also runs while a kept-alive connection waits for its
    // next request, so it is the idle timeout as well.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    // A client hanging up mid-response, or sending garbage, is its business.
    tokio::select! {
        _ = connection.as_mut() => return,
        () = tokio::time::sleep(timeouts.connection) => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(timeouts.header, connection).await;
}

/// Whether an accept error is about this connection only (retry at once)
/// rather than about the process or system (back off).
fn is_per_connection(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::Interrupted
    )
}

/// Accepts connections forever on its own single-threaded runtime.
fn serve_http(
    listener: std::net::TcpListener,
    scrape: Scrape,
    timeouts: Timeouts,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let scrape = Arc::new(scrape);
    let connections = Arc::new(Connections {
        open: Mutex::new(BTreeMap::new()),
        changed: Notify::new(),
    });
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut next_id = 0u64;
        let mut warned_at: Option<std::time::Instant> = None;
        loop {
            // With every slot answering a request, leave new connections
            // queued in the kernel until one finishes.
            while !connections.can_take() {
                connections.changed.notified().await;
            }
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    if warned_at.is_none_or(|t| t.elapsed() >= ACCEPT_WARNING_INTERVAL) {
                        eprintln!(
                            "aio-trace: cannot accept a metrics connection: {e}; \
                             closing idle ones and retrying (not reported again for a minute)"
                        );
                        warned_at = Some(std::time::Instant::now());
                    }
                    // Out of file descriptors: an idle connection's gives the
                    // queued one a chance; yielding lets the aborted task drop.
                    if connections.close_oldest_idle() {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    continue;
                }
            };
            if connections.full() && !connections.close_oldest_idle() {
                // Every connection turned busy since the check above.
                continue;
            }
            let id = next_id;
            next_id += 1;
            let busy = Arc::new(AtomicBool::new(false));
            let slot = Slot {
                id,
                connections: connections.clone(),
            };
            let connection = serve_connection(
                stream,
                scrape.clone(),
                busy.clone(),
                connections.clone(),
                timeouts,
            );
            let task = tokio::spawn(async move {
                // Dropped with the task, which removes the entry however the
                // task ends, aborted included.
                let _slot = slot;
                connection.await;
            });
            // The task has not run yet (this runtime has one thread), so it
            // cannot have ended before it is in the table.
            connections.lock().insert(
                id,
                Open {
                    busy,
                    task: task.abort_handle(),
                },
            );
        }
    })
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = TraceConfig {
        sample_every: args.sample.every(),
        budget: args.sample.budget,
        ..trace_config(&args.filter)?
    };
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    listener
        .set_nonblocking(true)
        .context("while setting up the listener")?;
    let address = listener.local_addr().unwrap_or(args.listen);
    if !address.ip().to_canonical().is_loopback() {
        eprintln!(
            "aio-trace: warning: {address} is not a loopback address: whoever can reach it \
             can read the metrics, which name the traced processes"
        );
    }
    let timeouts = Timeouts {
        header: args.header_timeout,
        connection: args.connection_timeout,
    };
    let (tracer, ring) = Tracer::start(&config)?;
    tracer.warn_skipped();
    let metrics = Arc::new(Metrics::sampled(config.sample_every));
    let comms = Arc::new(Mutex::new(HashMap::new()));
    let counters = tracer.counter_table().ok();
    let kernel_losses = tracer.loss_table().ok();
    let mut session = Session::new(tracer, ring, args.inflight_timeout)
        .context("while watching the ring buffer")?;
    let scrape = Scrape {
        metrics: metrics.clone(),
        counters,
        kernel_losses,
        user_losses: session.user_losses(),
        comms: comms.clone(),
        sample_every: session.sample_every(),
    };
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || {
            if let Err(e) = serve_http(listener, scrape, timeouts) {
                eprintln!("aio-trace: the metrics server stopped: {e}");
            }
        })
        .context("while starting the metrics server")?;
    // Polled once before the banner, so that its signal handlers are in place
    // by the time anyone is told the server runs: a SIGTERM right after the
    // banner then ends the trace cleanly instead of killing the process.
    let mut stop = Box::pin(stop_signal(None));
    if (&mut stop).now_or_never().is_some() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("Serving AIO metrics on http://{address}/metrics... Hit Ctrl-C to end.");
    let labels = SeriesLabels {
        comm: args.labels.contains(&SeriesLabel::Comm),
        cgroup: args.labels.contains(&SeriesLabel::Cgroup),
    };
    let mut sink = MetricsSink::new(metrics, comms, DevNames::system())
        .with_labels(labels, CgroupNames::system());
    session
        .run(&mut sink, stop)
        .await
        .context("while tracing")?;
    Ok(ExitCode::SUCCESS)
}
