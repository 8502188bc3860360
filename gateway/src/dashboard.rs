//! `/dashboard` on the admin port: one self-contained page (no CDN, no build step) that shows
//! the cluster live through the Admin API: the media nodes with their load and state, the rooms
//! on each, their publishers and subscribers with per-stream bitrate, loss and simulcast layer.
//! It asks for the admin secret and sends it with every Admin API request, as the Janus admin
//! demo does.

use actix_web::HttpResponse;

const PAGE: &str = include_str!("../assets/dashboard.html");

pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        // The page loads nothing from elsewhere; say so to the browser.
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
        ))
        .body(PAGE)
}
