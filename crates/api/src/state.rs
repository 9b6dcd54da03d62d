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
}
