//! `aio-trace serve`: traces until Ctrl-C or SIGTERM and serves `/metrics`
//! (Prometheus text format) from its own thread, so a scrape never delays
//! draining the ring buffer.

use std::{
    collections::HashMap,
    convert::Infallible,
    process::ExitCode,
    sync::{Arc, Mutex},
};

use aio_trace::{
    export::prometheus::{Metrics, MetricsSink, proc_comm, to_classic_text},
    loader::{CounterTable, LossTable, Tracer},
    session::{Session, UserLosses},
};
use anyhow::Context as _;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;

use crate::{
    cli::ServeArgs,
    cmd::common::{stop_signal, trace_config},
};

/// What a scrape reads besides the metrics the records feed.
struct Scrape {
    metrics: Arc<Metrics>,
    counters: Option<CounterTable>,
    kernel_losses: Option<LossTable>,
    user_losses: Arc<UserLosses>,
    comms: Arc<Mutex<HashMap<u32, String>>>,
}

impl Scrape {
    fn render(&self) -> Result<String, std::fmt::Error> {
        let counters = self
            .counters
            .as_ref()
            .map(CounterTable::snapshot)
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
        self.metrics.update_kernel(&counters, comm_of, &losses);
        self.metrics.render()
    }
}

fn respond(scrape: &Scrape, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let openmetrics = req
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
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

/// Accepts connections forever on its own single-threaded runtime.
fn serve_http(listener: std::net::TcpListener, scrape: Scrape) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let scrape = Arc::new(scrape);
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let scrape = scrape.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let response = respond(&scrape, &req);
                    async move { Ok::<_, Infallible>(response) }
                });
                // A client hanging up mid-response is its business.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = trace_config(&args.filter)?;
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    listener
        .set_nonblocking(true)
        .context("while setting up the listener")?;
    let address = listener.local_addr().unwrap_or(args.listen);
    let (tracer, ring) = Tracer::start(&config)?;
    tracer.warn_skipped();
    let metrics = Arc::new(Metrics::new());
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
    };
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || {
            if let Err(e) = serve_http(listener, scrape) {
                eprintln!("aio-trace: the metrics server stopped: {e}");
            }
        })
        .context("while starting the metrics server")?;
    eprintln!("Serving AIO metrics on http://{address}/metrics... Hit Ctrl-C to end.");
    let mut sink = MetricsSink::new(metrics, comms);
    session
        .run(&mut sink, stop_signal(None))
        .await
        .context("while tracing")?;
    Ok(ExitCode::SUCCESS)
}
