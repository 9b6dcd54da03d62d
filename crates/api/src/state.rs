//! What every handler shares: [`AppState`], built once by the composition root
//! ([`crate::startup::Application::build`]) and registered as `web::Data<AppState>`.

use std::sync::Arc;

use esignsp_adapters::store::Store;
use esignsp_domain::ports::AccessTokenVerifier;
use esignsp_domain::SignerProcessService;

use crate::body::FormLimits;
use crate::dto::Urls;
use crate::signing::BuiltinSigning;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub service: SignerProcessService,
    /// URL builder for representations.
    pub urls: Urls,
    /// Body limits.
    pub form_limits: FormLimits,
    /// `ui.signing_app_url` (empty: none).
    pub signing_app_url: String,
    /// The store, for pool metrics.
    pub store: Store,
    /// The token verifier, for readiness.
    pub verifier: Arc<dyn AccessTokenVerifier>,
    /// The built-in signing application, unless `ui.signing_app_url` is set.
    pub signing: Option<Arc<BuiltinSigning>>,
    /// Webhooks (SPEC §11), unless `webhooks.enabled` is false.
    pub webhooks: Option<Webhooks>,
}

/// The webhook endpoints resource's needs.
#[derive(Clone)]
pub struct Webhooks {
    /// The endpoints' use cases.
    pub service: esignsp_domain::webhooks::WebhookService,
    /// The outbound rules endpoint URLs must pass.
    pub outbound: esignsp_adapters::webhooks::OutboundPolicy,
    /// Wakes this replica's delivery worker (a replay is due now).
    pub wake: Arc<tokio::sync::Notify>,
}
