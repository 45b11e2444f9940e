//! Starting the daemon's services on listeners that are already bound.
//!
//! Binding is separate from serving so that tests bind `127.0.0.1:0`, learn the port, and
//! run exactly the code production runs (mini-redis `server.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use store::Store;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::shutdown::Shutdown;
use crate::smtp;
use crate::tls;

/// The daemon's bound sockets.
#[derive(Debug)]
pub struct Listeners {
    /// SMTP intake.
    pub smtp: TcpListener,
    /// Web UI (HTTPS).
    pub web: TcpListener,
    /// IMAP with STARTTLS.
    pub imap: TcpListener,
    /// IMAP over implicit TLS.
    pub imaps: TcpListener,
    /// Submission with STARTTLS and over implicit TLS; `None` without `submission.relay`.
    pub submission: Option<(TcpListener, TcpListener)>,
}

impl Listeners {
    /// Binds every listener the configuration names.
    ///
    /// # Errors
    /// When an address cannot be bound (in use, no permission).
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        let smtp = TcpListener::bind(config.smtp.listen)
            .await
            .with_context(|| format!("binding SMTP listener {}", config.smtp.listen))?;
        let web = TcpListener::bind(config.web.listen)
            .await
            .with_context(|| format!("binding web listener {}", config.web.listen))?;
        let bind = |addr: SocketAddr, what: &'static str| async move {
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {what} listener {addr}"))
        };
        let imap = bind(config.imap.listen, "IMAP").await?;
        let imaps = bind(config.imap.listen_tls, "IMAPS").await?;
        // Without a relay there is nowhere to send to: the ports stay closed.
        let submission = match config.submission.relay {
            Some(_) => Some((
                bind(config.submission.listen, "submission").await?,
                bind(config.submission.listen_tls, "submissions").await?,
            )),
            None => None,
        };
        Ok(Self {
            smtp,
            web,
            imap,
            imaps,
            submission,
        })
    }

    /// The submission (STARTTLS) and submissions (implicit TLS) addresses actually bound;
    /// `None` when submission is off.
    ///
    /// # Errors
    /// When a socket has no local address.
    pub fn submission_addrs(&self) -> std::io::Result<Option<(SocketAddr, SocketAddr)>> {
        self.submission
            .as_ref()
            .map(|(plain, implicit)| Ok((plain.local_addr()?, implicit.local_addr()?)))
            .transpose()
    }

    /// The SMTP address actually bound (with the real port when 0 was asked for).
    ///
    /// # Errors
    /// When the socket has no local address.
    pub fn smtp_addr(&self) -> std::io::Result<SocketAddr> {
        self.smtp.local_addr()
    }

    /// The IMAP (STARTTLS) and IMAPS addresses actually bound.
    ///
    /// # Errors
    /// When a socket has no local address.
    pub fn imap_addrs(&self) -> std::io::Result<(SocketAddr, SocketAddr)> {
        Ok((self.imap.local_addr()?, self.imaps.local_addr()?))
    }

    /// The web UI's address actually bound.
    ///
    /// # Errors
    /// When the socket has no local address.
    pub fn web_addr(&self) -> std::io::Result<SocketAddr> {
        self.web.local_addr()
    }
}

/// Starts all services as tasks on `shutdown.tracker`; returns at once with the checkpoint
/// duty, whose last checkpoint is written after [`Shutdown::run`] stopped the rest.
///
/// # Errors
/// When the TLS certificate or key, the classifier rules or the checkpoint key cannot be
/// loaded.
pub fn start(
    listeners: Listeners,
    config: Arc<Config>,
    store: Store,
    shutdown: &Shutdown,
) -> anyhow::Result<Arc<crate::checkpoint::Duty>> {
    let acceptor = tls::acceptor(&config.tls.cert, &config.tls.key)?;
    let rules = Arc::new(load_rules(&config)?);
    let committed = Arc::new(tokio::sync::Notify::new());
    let srs_secret = Arc::new(crate::setup::srs_secret(&config)?);
    let queued = Arc::new(tokio::sync::Notify::new());
    let dkim = crate::dkim::Signer::load(&config)?;
    let checkpoints = Arc::new(crate::checkpoint::Duty::new(
        Arc::clone(&config),
        store.clone(),
        dkim.clone(),
        Arc::clone(&queued),
    )?);
    shutdown
        .tracker
        .spawn(Arc::clone(&checkpoints).run(shutdown.clone()));
    shutdown.tracker.spawn(
        crate::retention::Retention {
            store: store.clone(),
            config: Arc::clone(&config),
            checkpoints: Arc::clone(&checkpoints),
        }
        .run(shutdown.clone()),
    );
    let ocr = crate::ocr::Tesseract::start(&config.ocr).map(Arc::new);
    let forwarder = crate::forward::Forwarder {
        store: store.clone(),
        config: Arc::clone(&config),
        rules: Arc::clone(&rules),
        srs_secret: Arc::clone(&srs_secret),
        dkim: dkim.clone(),
        arc: crate::arc::Sealer::load(&config)?,
        queued: Arc::clone(&queued),
    };
    let pipeline = Pipeline {
        store: store.clone(),
        rules: Arc::clone(&rules),
        ocr: ocr.clone(),
        timeout: config.classifier.timeout,
        workers: config.classifier.workers,
        wake: Arc::clone(&committed),
        forwarder,
        node: config.smtp.hostname.clone(),
        throttle: Arc::new(crate::throttle::Throttle::default()),
    };
    shutdown.tracker.spawn(pipeline.run(shutdown.clone()));
    shutdown.tracker.spawn(expire_exemptions(
        store.clone(),
        Arc::clone(&config),
        Arc::clone(&rules),
        dkim.clone(),
        shutdown.clone(),
    ));
    let delivery =
        crate::delivery::Delivery::new(store.clone(), Arc::clone(&config), Arc::clone(&queued))?;
    shutdown.tracker.spawn(delivery.run(shutdown.clone()));
    let mut web = crate::web::web(
        &config,
        store.clone(),
        crate::web::WebActions {
            exemptions: crate::exemptions::Exemptions {
                config: Arc::clone(&config),
                store: store.clone(),
                rules: Arc::clone(&rules),
                dkim: dkim.clone(),
                queued: Some(Arc::clone(&queued)),
            },
        },
    );
    // The ports devices are told are the ones bound (they differ from the configuration's
    // only where it asks for any free port, `:0`).
    if let Ok((plain, implicit)) = listeners.imap_addrs() {
        web.site.imap_port = plain.port();
        web.site.imaps_port = implicit.port();
    }
    if let Ok(Some((plain, implicit))) = listeners.submission_addrs() {
        web.site.submission_port = Some(plain.port());
        web.site.submissions_port = Some(implicit.port());
    }
    let web = webui::router(web);
    if let Ok(addr) = listeners.web.local_addr() {
        tracing::info!(%addr, "web UI listening (HTTPS)");
    }
    shutdown.tracker.spawn(webui::serve(
        listeners.web,
        acceptor.clone(),
        web,
        config.web.limits.clone(),
        shutdown.stop.clone(),
    ));
    if let (Ok(plain), Ok(implicit)) = (listeners.imap.local_addr(), listeners.imaps.local_addr()) {
        tracing::info!(%plain, %implicit, "IMAP listening");
    }
    shutdown.tracker.spawn(crate::imap::listener::run(
        listeners.imap,
        listeners.imaps,
        acceptor.clone(),
        crate::imap::session::Context::new(store.clone(), Arc::clone(&config), shutdown.clone()),
    ));
    let ctx = smtp::session::Context {
        config: Arc::clone(&config),
        store,
        tls: Some(acceptor),
        shutdown: shutdown.clone(),
        committed,
        srs_secret,
        role: smtp::session::Role::Intake,
    };
    if let Some((plain, implicit)) = listeners.submission {
        if let (Ok(p), Ok(i)) = (plain.local_addr(), implicit.local_addr()) {
            tracing::info!(plain = %p, implicit = %i, relay = ?config.submission.relay, "submission listening");
        }
        let submitter = crate::submission::Submitter {
            rules,
            ocr,
            hashes: crate::imap::gate::Gate::new(1),
            classifying: Arc::new(tokio::sync::Semaphore::new(
                config.classifier.workers.max(1),
            )),
            queued,
        };
        let ctx = smtp::session::Context {
            role: smtp::session::Role::Submission(Arc::new(submitter)),
            ..ctx.clone()
        };
        shutdown
            .tracker
            .spawn(smtp::listener::run(plain, ctx.clone(), false));
        shutdown
            .tracker
            .spawn(smtp::listener::run(implicit, ctx, true));
    }
    if let Ok(addr) = listeners.smtp.local_addr() {
        tracing::info!(%addr, "SMTP listening");
    }
    shutdown
        .tracker
        .spawn(smtp::listener::run(listeners.smtp, ctx, false));
    Ok(checkpoints)
}

/// The classifier rules the configuration names, or the built-in ones.
///
/// # Errors
/// When the file cannot be read or the rules are invalid (every problem listed).
pub fn load_rules(config: &Config) -> anyhow::Result<classifier::Rules> {
    let Some(path) = &config.classifier.rules else {
        return Ok(classifier::Rules::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("classifier.rules: reading {}", path.display()))?;
    classifier::Rules::from_toml(&text)
        .with_context(|| format!("classifier.rules: {}", path.display()))
}

/// What the reminder says about a follow-up exemption.
fn follow_up(config: &Config, next: &store::Exemption) -> crate::compose::FollowUp {
    match (next.state, next.valid_until) {
        (store::ExemptionState::Active, Some(until)) => crate::compose::FollowUp::Approved {
            id: next.id,
            until: config.dates().millis(until),
        },
        _ => crate::compose::FollowUp::Pending { id: next.id },
    }
}

/// Marks exemptions past their end as expired and queues reminders for those ending soon,
/// every `exemptions.check_interval_secs`. Forwarding never depends on this task: "active"
/// is always judged against the clock.
async fn expire_exemptions(
    store: Store,
    config: Arc<Config>,
    rules: Arc<classifier::Rules>,
    dkim: crate::dkim::Signer,
    shutdown: Shutdown,
) {
    let window = i64::try_from(config.exemptions.reminder_before.as_millis()).unwrap_or(0);
    // Reminders withheld by this process: audited once, not at every check.
    let mut withheld = std::collections::HashSet::new();
    loop {
        let now = store::now_millis();
        match store.expire_exemptions(now).await {
            Ok(expired) => {
                for e in expired {
                    tracing::info!(id = e.id, user = %e.login, "exemption expired");
                }
            }
            Err(err) => tracing::error!(error = %err, "cannot expire exemptions"),
        }
        if window > 0 {
            match store.exemptions_to_remind(now, window).await {
                Ok(due) => {
                    for e in due {
                        let until = config.dates().or(e.valid_until, "");
                        let follow_up = match store.follow_up(e.id, now).await {
                            Ok(next) => next.map(|next| follow_up(&config, &next)),
                            Err(err) => {
                                tracing::error!(id = e.id, error = %err, "cannot look for a follow-up");
                                continue;
                            }
                        };
                        let mut mail = crate::compose::reminder(
                            &config.notices,
                            &e.login,
                            &e.target,
                            e.id,
                            &until,
                            follow_up.as_ref(),
                        );
                        if let Some(categories) = crate::outgoing::flagged(&mail.body, &rules) {
                            if withheld.insert(e.id) {
                                crate::outgoing::withheld(
                                    &store,
                                    "reminder",
                                    vec![
                                        format!("exemption:{}", e.id),
                                        format!("user:{}", e.login),
                                    ],
                                    &categories,
                                )
                                .await;
                            }
                            continue;
                        }
                        mail.body = dkim.sign(mail.body);
                        match store.remind_exemption(e.id, &mail, now).await {
                            Ok(true) => {
                                tracing::info!(id = e.id, user = %e.login, "expiry reminder queued")
                            }
                            Ok(false) => {}
                            Err(err) => {
                                tracing::error!(id = e.id, error = %err, "cannot queue the reminder")
                            }
                        }
                    }
                }
                Err(err) => tracing::error!(error = %err, "cannot look for due reminders"),
            }
        }
        tokio::select! {
            () = shutdown.stop.cancelled() => return,
            () = tokio::time::sleep(config.exemptions.check_interval) => {}
        }
    }
}
