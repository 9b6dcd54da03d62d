//! The OpenAPI 3.1 description of the API (`GET /openapi.json`), generated from the handlers'
//! `#[utoipa::path]` attributes and the wire model: the schemas are the types that serialize
//! the answers ([`crate::dto`], [`crate::error::Problem`]) and describe the request bodies;
//! the responses every protected operation shares are [`crate::error::ProtectedErrors`] and
//! [`crate::error::BodyErrors`]. `GET /docs` renders it (Swagger UI, [`crate::routes::docs`]).

use utoipa::openapi::encoding::EncodingBuilder;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::link::{Link, LinkBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi};

use crate::dto::{
    AuditEvents, CreateProcessForm, CreateProcessJson, Document, DocumentForm, DocumentResult, Health,
    ProcessDocuments, ProcessResult, SignatureDefinition, SignerProcess,
};
use crate::error::Problem;

struct BearerSecurity;

impl Modify for BearerSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "RFC 6750 bearer access token (RFC 9068 JWT) with scope urn:safelayer:eidas:sign:process:document",
                    ))
                    .build(),
            ),
        );
    }
}

/// `(operation id, parameter, runtime expression)`: the id-taking operations a created process
/// (O1's 201 body) leads to (OpenAPI 3.1 §4.8.20 Link Objects), so that clients and test tools
/// (schemathesis's stateful phase) can follow a created process to every operation on it.
const PROCESS_LINKS: &[(&str, &[(&str, &str)])] = &[
    ("SignerProcessRead", &[("id", "$response.body#/id")]),
    ("SignerProcessResultUpdate", &[("id", "$response.body#/id")]),
    ("SignerProcessResultRead", &[("id", "$response.body#/id")]),
    ("SignerProcessDocumentsRead", &[("id", "$response.body#/id")]),
    (
        "SignerProcessDocumentResultUpdate",
        &[("id", "$response.body#/id"), ("document_id", "$response.body#/documents/0/id")],
    ),
    ("SignerProcessEventsRead", &[("id", "$response.body#/id")]),
    ("UserBrowserTask", &[("signerProcessId", "$response.body#/id")]),
    ("DocumentRead", &[("id", "$response.body#/documents/0/id")]),
    ("DocumentContentRead", &[("id", "$response.body#/documents/0/id")]),
    ("SignerProcessDelete", &[("id", "$response.body#/id")]),
];

/// The operations a created document resource (O8's 201 body) leads to.
const DOCUMENT_LINKS: &[(&str, &[(&str, &str)])] = &[
    ("DocumentRead", &[("id", "$response.body#/id")]),
    ("DocumentContentRead", &[("id", "$response.body#/id")]),
    ("DocumentDelete", &[("id", "$response.body#/id")]),
];

/// The operations a registered webhook endpoint (its 201 body) leads to (SPEC §11).
const WEBHOOK_ENDPOINT_LINKS: &[(&str, &[(&str, &str)])] = &[
    ("WebhookEndpointRead", &[("id", "$response.body#/id")]),
    ("WebhookEndpointUpdate", &[("id", "$response.body#/id")]),
    ("WebhookEndpointSecretRotate", &[("id", "$response.body#/id")]),
    ("WebhookDeliveryList", &[("id", "$response.body#/id")]),
    ("WebhookEndpointDelete", &[("id", "$response.body#/id")]),
];

/// The multipart parts that are JSON documents (OpenAPI Encoding Objects).
const JSON_PARTS: &[(&str, &str)] = &[("SignerProcessCreate", "process"), ("DocumentCreate", "signers")];

/// A Link Object to `operation_id` with `parameters` (name → runtime expression).
///
/// utoipa 5.5 serializes `Link`'s fields in snake case (`operation_id`), which no OpenAPI tool
/// reads; the fields go through its flattened extensions instead, spelled as OpenAPI spells them.
fn link(operation_id: &str, parameters: &[(&str, &str)]) -> Link {
    let parameters: serde_json::Map<String, serde_json::Value> =
        parameters.iter().map(|(name, value)| ((*name).to_owned(), (*value).into())).collect();
    LinkBuilder::new()
        .extensions(Some(Extensions::from_iter([
            ("operationId", serde_json::Value::from(operation_id)),
            ("parameters", parameters.into()),
        ])))
        .build()
}

/// Links from the 201 responses of O1 and O8, and the media type of the JSON parts of their
/// multipart bodies: what the `#[utoipa::path]` attributes cannot say.
struct LinksAndEncodings;

impl Modify for LinksAndEncodings {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for path in openapi.paths.paths.values_mut() {
            let Some(operation) = path.post.as_mut() else { continue };
            let id = operation.operation_id.clone().unwrap_or_default();
            let links = match id.as_str() {
                "SignerProcessCreate" => PROCESS_LINKS,
                "DocumentCreate" => DOCUMENT_LINKS,
                "WebhookEndpointCreate" => WEBHOOK_ENDPOINT_LINKS,
                _ => continue,
            };
            if let Some(RefOr::T(created)) = operation.responses.responses.get_mut("201") {
                for (target, parameters) in links {
                    created.links.insert((*target).to_owned(), RefOr::T(link(target, parameters)));
                }
            }
            let form = operation.request_body.as_mut().and_then(|body| body.content.get_mut("multipart/form-data"));
            if let Some(form) = form {
                for (_, part) in JSON_PARTS.iter().filter(|(operation, _)| *operation == id) {
                    form.encoding.insert(
                        (*part).to_owned(),
                        EncodingBuilder::new().content_type(Some("application/json")).build(),
                    );
                }
            }
        }
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "esignsp — eSignSP v2 document signature process API", version = env!("CARGO_PKG_VERSION")),
    paths(
        crate::routes::processes::create,
        crate::routes::processes::get,
        crate::routes::processes::delete,
        crate::routes::processes::get_result,
        crate::routes::processes::put_result,
        crate::routes::processes::documents,
        crate::routes::processes::put_document_result,
        crate::routes::processes::events,
        crate::routes::documents::create,
        crate::routes::documents::get,
        crate::routes::documents::content,
        crate::routes::documents::delete,
        crate::routes::webhooks::create,
        crate::routes::webhooks::list,
        crate::routes::webhooks::get,
        crate::routes::webhooks::update,
        crate::routes::webhooks::delete,
        crate::routes::webhooks::rotate_secret,
        crate::routes::webhooks::deliveries,
        crate::routes::webhooks::replay,
        crate::routes::ui::browser,
        crate::routes::health::healthz,
        crate::routes::health::readyz,
        crate::routes::health::metrics,
    ),
    components(schemas(
        ProcessResult, DocumentResult, Problem, SignerProcess, ProcessDocuments, Document, AuditEvents,
        CreateProcessForm, CreateProcessJson, DocumentForm, SignatureDefinition, Health,
        crate::routes::webhooks::WebhookEndpoint, crate::routes::webhooks::WebhookEndpoints,
        crate::routes::webhooks::WebhookDeliveries, crate::routes::webhooks::EndpointCreation,
        crate::routes::webhooks::EndpointPatch
    )),
    modifiers(&BearerSecurity, &LinksAndEncodings),
)]
pub struct ApiDoc;
