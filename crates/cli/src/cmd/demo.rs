//! `framewire demo`: a hub with its dashboard and two synthetic cameras, in one process, to try
//! everything without hardware.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use framewire_camera::{self as camera, CameraOptions, Ended};
use framewire_client::{ConnectOptions, TlsOptions};
use framewire_media::SourceSpec;
use framewire_server::{Config, HubBuilder};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::cmd::serve;
use crate::Global;

/// The demo's cameras: name, size, frames per second.
const CAMERAS: [(&str, u32, u32, f64); 2] = [("cam-1", 640, 480, 15.0), ("cam-2", 320, 240, 10.0)];
/// How long the cameras have to hang up before the hub stops anyway.
const CAMERA_GRACE: Duration = Duration::from_secs(3);

/// Arguments of `framewire demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address for framewire clients (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    listen: String,
    /// Address of the web dashboard (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7879", value_name = "ADDR")]
    http: String,
    /// Data folder of the demo's hub.
    #[arg(long, default_value = "./framewire-demo-data", value_name = "DIR")]
    data: PathBuf,
    #[command(flatten)]
    tls: super::serve::TlsArgs,
}

/// Runs hub and cameras until SIGINT or SIGTERM.
pub async fn run(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    let mut sigint = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut config = Config::new(&args.data);
    if let Some(name) = global.explicit_name.as_ref() {
        config.hub_name = name.clone();
    }
    let mut builder = HubBuilder::new(config)
        .listen(&args.listen)
        .http(&args.http);
    if let Some(id) = args.tls.identity(&args.data)? {
        builder = builder.tls(id);
    }
    if let Some(a) = &args.tls.plain_listen {
        builder = builder.plain(a);
    }
    let hub = serve::start(builder, &args.data).await?;
    let addr = hub.addr();
    // The cameras pin the hub's own certificate.
    let camera_tls = hub.fingerprint().map(TlsOptions::pinned);

    let (stop, stop_rx) = watch::channel(false);
    let mut cameras = tokio::task::JoinSet::new();
    for (name, width, height, fps) in CAMERAS {
        let opts = CameraOptions {
            server: addr.to_string(),
            connect: ConnectOptions {
                name: name.to_owned(),
                token: global.token.clone(),
                tls: camera_tls.clone(),
                ..ConnectOptions::default()
            },
            source: SourceSpec::Synthetic { width, height },
            fps: Some(fps),
            quality: 80,
            max_latency_ms: 0,
            frames: None,
            on_command: None,
            figures: false,
        };
        let mut rx = stop_rx.clone();
        cameras.spawn(async move {
            let stopped = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            (
                name,
                camera::run(opts, stopped)
                    .await
                    .map_err(anyhow::Error::from),
            )
        });
        eprintln!("camera {name}: synthetic {width}x{height} at {fps} fps");
    }
    if !global.quiet {
        let client = match hub.fingerprint() {
            None => format!("framewire --server {addr}"),
            Some(fp) => format!(
                "framewire --server {addr} --tls-fingerprint {}",
                framewire_client::format_fingerprint(&fp)
            ),
        };
        eprintln!("try: {client} cmd cam-1 status   |   {client} watch cam-1");
    }

    loop {
        tokio::select! {
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            Some(done) = cameras.join_next() => match done {
                Ok((name, Ok(Ended::StopCommand))) => eprintln!("camera {name} stopped (stop command)"),
                Ok((name, Ok(_))) => eprintln!("camera {name} stopped"),
                Ok((name, Err(e))) => eprintln!("camera {name} failed: {e:#}"),
                Err(e) => eprintln!("a camera task failed: {e}"),
            },
        }
    }
    tracing::info!("shutting down");
    let _ = stop.send(true);
    let _ = tokio::time::timeout(CAMERA_GRACE, async {
        while cameras.join_next().await.is_some() {}
    })
    .await;
    cameras.abort_all();
    serve::stop(hub).await?;
    Ok(ExitCode::SUCCESS)
}
