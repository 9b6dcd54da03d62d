//! Routes of the eSignSP v2 API (SPEC §3) and the operational endpoints.

pub mod docs;
pub mod documents;
pub mod health;
pub mod processes;
pub mod signing_page;
pub mod ui;
pub mod webhooks;

use actix_web::{web, HttpResponse};

use crate::dto::API_BASE;
use crate::error::ApiError;

fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow)) })
}

/// Registers every route. Unknown paths answer 404 and known paths with another method 405
/// with `Allow`, all as problem documents.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use documents as d;
    use processes as p;
    use webhooks as w;
    cfg.service(
        web::scope(API_BASE)
            .service(
                web::resource("/signer_processes")
                    .route(web::post().to(p::create))
                    .default_service(not_allowed("POST")),
            )
            .service(
                web::resource("/signer_processes/{id}")
                    .route(web::get().to(p::get))
                    .route(web::head().to(p::get))
                    .route(web::delete().to(p::delete))
                    .default_service(not_allowed("GET, HEAD, DELETE")),
            )
            .service(
                web::resource("/signer_processes/{id}/result")
                    .route(web::get().to(p::get_result))
                    .route(web::head().to(p::get_result))
                    .route(web::put().to(p::put_result))
                    .default_service(not_allowed("GET, HEAD, PUT")),
            )
            .service(
                web::resource("/signer_processes/{id}/events")
                    .route(web::get().to(p::events))
                    .route(web::head().to(p::events))
                    .default_service(not_allowed("GET, HEAD")),
            )
            .service(
                web::resource("/signer_processes/{id}/documents")
                    .route(web::get().to(p::documents))
                    .route(web::head().to(p::documents))
                    .default_service(not_allowed("GET, HEAD")),
            )
            .service(
                web::resource("/signer_processes/{id}/documents/{document_id}/result")
                    .route(web::put().to(p::put_document_result))
                    .default_service(not_allowed("PUT")),
            )
            .service(
                web::resource("/webhook_endpoints")
                    .route(web::post().to(w::create))
                    .route(web::get().to(w::list))
                    .route(web::head().to(w::list))
                    .default_service(not_allowed("GET, HEAD, POST")),
            )
            .service(
                web::resource("/webhook_endpoints/{id}")
                    .route(web::get().to(w::get))
                    .route(web::head().to(w::get))
                    .route(web::patch().to(w::update))
                    .route(web::delete().to(w::delete))
                    .default_service(not_allowed("GET, HEAD, PATCH, DELETE")),
            )
            .service(
                web::resource("/webhook_endpoints/{id}/secret/rotate")
                    .route(web::post().to(w::rotate_secret))
                    .default_service(not_allowed("POST")),
            )
            .service(
                web::resource("/webhook_endpoints/{id}/deliveries")
                    .route(web::get().to(w::deliveries))
                    .route(web::head().to(w::deliveries))
                    .default_service(not_allowed("GET, HEAD")),
            )
            .service(
                web::resource("/webhook_endpoints/{id}/deliveries/{delivery_id}/replay")
                    .route(web::post().to(w::replay))
                    .default_service(not_allowed("POST")),
            )
            .service(web::resource("/documents").route(web::post().to(d::create)).default_service(not_allowed("POST")))
            .service(
                web::resource("/documents/{id}")
                    .route(web::get().to(d::get))
                    .route(web::head().to(d::get))
                    .route(web::delete().to(d::delete))
                    .default_service(not_allowed("GET, HEAD, DELETE")),
            )
            .service(
                web::resource("/documents/{id}/content")
                    .route(web::get().to(d::content))
                    .route(web::head().to(d::content))
                    .default_service(not_allowed("GET, HEAD")),
            )
            .service(
                web::resource("/ui")
                    .route(web::get().to(ui::browser))
                    .route(web::head().to(ui::browser))
                    .default_service(not_allowed("GET, HEAD")),
            )
            .service(
                web::resource("/ui/sign")
                    .route(web::post().to(signing_page::sign))
                    .default_service(not_allowed("POST")),
            )
            .service(
                web::resource("/ui/decline")
                    .route(web::post().to(signing_page::decline))
                    .default_service(not_allowed("POST")),
            )
            .service(
                web::resource("/ui/login")
                    .route(web::get().to(signing_page::login_callback))
                    .default_service(not_allowed("GET")),
            )
            .service(
                web::resource("/ui/document")
                    .route(web::get().to(signing_page::document))
                    .route(web::head().to(signing_page::document))
                    .default_service(not_allowed("GET, HEAD")),
            )
            .service(
                web::resource("/ui/assets/signing.css")
                    .route(web::get().to(signing_page::stylesheet))
                    .default_service(not_allowed("GET")),
            )
            .service(
                web::resource("/ui/assets/signing.js")
                    .route(web::get().to(signing_page::script))
                    .default_service(not_allowed("GET")),
            ),
    )
    .service(
        web::resource("/healthz")
            .route(web::get().to(health::healthz))
            .route(web::head().to(health::healthz))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/openapi.json")
            .route(web::get().to(health::openapi))
            .route(web::head().to(health::openapi))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/docs")
            .route(web::get().to(docs::index))
            .route(web::head().to(docs::index))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/docs/{file:.+}")
            .route(web::get().to(docs::asset))
            .route(web::head().to(docs::asset))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/metrics")
            .route(web::get().to(health::metrics))
            .route(web::head().to(health::metrics))
            .default_service(not_allowed("GET, HEAD")),
    )
    .service(
        web::resource("/readyz")
            .route(web::get().to(health::readyz))
            .route(web::head().to(health::readyz))
            .default_service(not_allowed("GET, HEAD")),
    );
}
