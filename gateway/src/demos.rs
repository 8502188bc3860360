//! `demos_dir`: a folder of static pages (such as Debian's `janus-demos`) served from the HTTP
//! port under `/demos/`, so that a newcomer's browser gets a working video room from this one
//! process. The demos' two settings files are answered by this server, pointed at itself.

use actix_web::{web, HttpRequest, HttpResponse};
use std::path::{Component, Path, PathBuf};

/// Where the pages are and what the settings files say.
#[derive(Clone)]
pub struct Demos {
    pub dir: PathBuf,
    pub ws_port: u16,
    pub admin_port: u16,
    pub base_path: String,
    pub tls: bool,
}

/// Largest file served (the demos' biggest scripts are a few hundred KiB).
const MAX_FILE: u64 = 16 << 20;

pub fn routes(cfg: &mut web::ServiceConfig, demos: Demos) {
    cfg.app_data(web::Data::new(demos))
        .route("/demos", web::get().to(|| async { redirect("/demos/") }))
        .route("/demos/{tail:.*}", web::get().to(serve));
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::Found().insert_header(("Location", to)).finish()
}

impl Demos {
    /// `settings.js`: WebSocket first, this HTTP port's long-poll if that fails (janus.js tries
    /// the servers of an array in turn).
    fn settings(&self) -> String {
        let ws = if self.tls { "wss://" } else { "ws://" };
        format!(
            "// Served by Portunus: the demos talk to this server.\n\
             var server = [\"{ws}\" + window.location.hostname + \":{}\", \
             window.location.protocol + \"//\" + window.location.host + \"{}\"];\n\
             var iceServers = null;\nvar token = null;\nvar apisecret = null;\n",
            self.ws_port, self.base_path
        )
    }

    /// `adminconfig.js`: the Admin API of this gateway (the secret is asked for by the page).
    fn admin_settings(&self) -> String {
        format!(
            "// Served by Portunus: the admin page talks to this gateway's Admin API.\n\
             var server = window.location.protocol + \"//\" + window.location.hostname + \":{}/admin\";\n\
             var secret = \"\";\n",
            self.admin_port
        )
    }
}

async fn serve(req: HttpRequest, demos: web::Data<Demos>) -> HttpResponse {
    let tail = req.match_info().query("tail");
    let js = |body: String| HttpResponse::Ok().content_type("application/javascript").body(body);
    match tail {
        "settings.js" => return js(demos.settings()),
        "adminconfig.js" => return js(demos.admin_settings()),
        _ => {}
    }
    let Some(path) = inside(&demos.dir, tail) else { return HttpResponse::NotFound().finish() };
    let path = if path.is_dir() { path.join("index.html") } else { path };
    // Symbolic links are followed (Debian's demos link their scripts from /usr/share/javascript):
    // the folder is the operator's to fill.
    let read = {
        let path = path.clone();
        web::block(move || match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.len() <= MAX_FILE => std::fs::read(&path).ok(),
            _ => None,
        })
    };
    match read.await {
        Ok(Some(body)) => HttpResponse::Ok().content_type(content_type(&path)).body(body),
        _ => HttpResponse::NotFound().finish(),
    }
}

/// `tail` below `dir`, refusing anything that climbs out (`..`) or is absolute.
fn inside(dir: &Path, tail: &str) -> Option<PathBuf> {
    let rel = Path::new(tail);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(dir.join(rel))
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "application/javascript",
        "css" => "text/css",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "json" | "map" => "application/json",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_outside_the_folder_is_reachable() {
        let d = Path::new("/srv/demos");
        assert_eq!(inside(d, "css/demo.css"), Some(PathBuf::from("/srv/demos/css/demo.css")));
        assert_eq!(inside(d, "../etc/passwd"), None);
        assert_eq!(inside(d, "css/../../etc/passwd"), None);
        assert_eq!(inside(d, "/etc/passwd"), None);
        assert_eq!(inside(d, "./index.html"), None);
    }
}
