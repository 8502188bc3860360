"""Records Janus 1.1.2's replies for API authentication and the Admin API into tests/golden.

Needs Debian's `janus` package. Starts Janus twice on loopback with a private configuration
(stored tokens, then signed tokens; api_secret and admin_secret set both times, the HTTP
transport with its admin endpoint), sends each case over HTTP, and writes one file per case with
random values replaced by placeholders. Not part of the test suite: run it by hand to record again
(python3 tests/golden/record/auth.py), then review the diff.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent.parent
API_SECRET = "janusrocks"
ADMIN_SECRET = "janusoverlord"
TOKEN_SECRET = "signsecret"
ADMIN_KEY = "supersecret"
HTTP, ADMIN = 18088, 17088


def janus_config(folder, signed):
    lib = Path("/usr/lib/x86_64-linux-gnu/janus")
    token_secret = f'token_auth_secret = "{TOKEN_SECRET}"' if signed else ""
    (folder / "janus.jcfg").write_text(f"""
general: {{
    configs_folder = "{folder}"
    plugins_folder = "{lib}/plugins"
    transports_folder = "{lib}/transports"
    events_folder = "{lib}/events"
    loggers_folder = "{lib}/loggers"
    debug_level = 3
    server_name = "JanusConformanceLab"
    session_timeout = 10
    api_secret = "{API_SECRET}"
    token_auth = true
    {token_secret}
    admin_secret = "{ADMIN_SECRET}"
}}
media: {{ rtp_port_range = "40000-40100" }}
nat: {{ ice_enforce_list = "lo" ignore_mdns = true }}
plugins: {{ disable = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so" }}
transports: {{ disable = "libjanus_websockets.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so" }}
loggers: {{ disable = "libjanus_jsonlog.so" }}
events: {{ broadcast = false }}
""")
    (folder / "janus.transport.http.jcfg").write_text(f"""
general: {{ base_path = "/janus" http = true port = {HTTP} interface = "lo" https = false }}
admin: {{ admin_base_path = "/admin" admin_http = true admin_port = {ADMIN} admin_interface = "lo" admin_https = false }}
""")
    (folder / "janus.plugin.videoroom.jcfg").write_text(f'general: {{ admin_key = "{ADMIN_KEY}" }}\n')


def post(port, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def get_status(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def placeholders(v, ids):
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if k == "transaction":
                out[k] = "<transaction>"
            elif k in ("session_id",) and isinstance(x, int):
                out[k] = "<session_id>"
            elif k == "id" and isinstance(x, int):
                out[k] = "<id>"
            elif k == "sessions" and isinstance(x, list):
                out[k] = ["<session_id>" for _ in x]
            elif k == "handles" and isinstance(x, list):
                out[k] = ["<handle_id>" for _ in x]
            elif k in ("session_last_activity", "created", "current_time") and isinstance(x, int):
                out[k] = "<time>"
            elif k in ("handle_id", "sender") and isinstance(x, int):
                out[k] = "<handle_id>"
            elif k == "session_transport":
                out[k] = "janus.transport.<transport>"
            elif k == "session_timeout" and isinstance(x, int):
                out[k] = "<seconds>"
            elif k == "room" and isinstance(x, int) and x > 100000:
                out[k] = "<room>"
            else:
                out[k] = placeholders(x, ids)
        return out
    if isinstance(v, list):
        return [placeholders(x, ids) for x in v]
    if isinstance(v, str):
        for real, ph in ids.items():
            v = v.replace(str(real), ph)
    return v


def write(name, reply, ids=None):
    (GOLDEN / name).write_text(json.dumps(placeholders(reply, ids or {}), indent=2) + "\n")
    print(name)


def sign(data):
    mac = hmac.new(TOKEN_SECRET.encode(), data.encode(), hashlib.sha1).digest()
    return f"{data}:{base64.b64encode(mac).decode()}"


def run(signed, cases):
    folder = Path(tempfile.mkdtemp(prefix="janus-record-"))
    janus_config(folder, signed)
    proc = subprocess.Popen(["janus", "-C", str(folder / "janus.jcfg"), "-F", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while True:
            try:
                post(HTTP, "/janus", {"janus": "ping", "transaction": "up"})
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("janus did not start")
                time.sleep(0.2)
        cases()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def stored_cases():
    t = lambda: {"transaction": "rec"}
    write("auth.error_403_create_without_secret.json", post(HTTP, "/janus", {"janus": "create", **t()}))
    write("auth.error_403_create_wrong_secret.json", post(HTTP, "/janus", {"janus": "create", "apisecret": "nope", **t()}))
    write("auth.info_ping_need_nothing.json", post(HTTP, "/janus", {"janus": "ping", **t()}))
    created = post(HTTP, "/janus", {"janus": "create", "apisecret": API_SECRET, **t()})
    sid = created["data"]["id"]
    ids = {sid: "<session_id>"}
    write("auth.error_403_keepalive_without_secret.json",
          post(HTTP, f"/janus/{sid}", {"janus": "keepalive", **t()}), ids)
    write("auth.error_403_before_458.json", post(HTTP, "/janus/123456789", {"janus": "keepalive", **t()}))
    # Admin API: the secret, then tokens.
    write("admin.error_403_without_secret.json", post(ADMIN, "/admin", {"janus": "list_tokens", **t()}))
    write("admin.ping.json", post(ADMIN, "/admin", {"janus": "ping", **t()}))
    a = lambda verb, **kw: post(ADMIN, "/admin", {"janus": verb, "admin_secret": ADMIN_SECRET, **t(), **kw})
    write("admin.add_token.json", a("add_token", token="tok-all"))
    write("admin.add_token_plugins.json", a("add_token", token="tok-none", plugins=["janus.plugin.echotest"]))
    write("admin.allow_token.json", a("allow_token", token="tok-none", plugins=["janus.plugin.videoroom"]))
    write("admin.disallow_token.json", a("disallow_token", token="tok-none", plugins=["janus.plugin.videoroom"]))
    write("admin.list_tokens.json", a("list_tokens"))
    write("admin.error_remove_token_unknown.json", a("remove_token", token="nope"))
    write("admin.error_allow_token_missing_plugins.json", a("allow_token", token="tok-all"))
    write("admin.error_add_token_missing_token.json", a("add_token"))
    write("admin.set_log_level.json", a("set_log_level", level=4))
    write("admin.error_set_log_level_range.json", a("set_log_level", level=9))
    write("admin.error_set_log_level_missing.json", a("set_log_level"))
    write("admin.accept_new_sessions_false.json", a("accept_new_sessions", accept=False))
    write("auth.error_472_not_accepting.json", post(HTTP, "/janus", {"janus": "create", "apisecret": API_SECRET, **t()}))
    write("admin.accept_new_sessions_true.json", a("accept_new_sessions", accept=True))
    write("admin.error_accept_new_sessions_type.json", a("accept_new_sessions", accept="yes"))
    # A token authorizes like the secret; attach checks the token's plugins.
    created = post(HTTP, "/janus", {"janus": "create", "token": "tok-all", **t()})
    sid = created["data"]["id"]
    ids = {sid: "<session_id>"}
    write("auth.create_with_token.json", created, ids)
    write("auth.error_403_bad_token.json", post(HTTP, "/janus", {"janus": "create", "token": "nope", **t()}))
    write("auth.error_405_token_plugin.json",
          post(HTTP, f"/janus/{sid}", {"janus": "attach", "plugin": "janus.plugin.videoroom", "token": "tok-none", **t()}), ids)
    write("admin.remove_token.json", a("remove_token", token="tok-none"))
    write("admin.list_sessions.json", a("list_sessions"), ids)
    write("admin.error_403_wrong_secret.json",
          post(ADMIN, "/admin", {"janus": "list_sessions", "admin_secret": "nope", **t()}))
    status, body = get_status(HTTP, f"/janus/{sid}")
    write("http.longpoll_403_without_secret.json", {"status": status, "body": body}, ids)
    # Session- and handle-level Admin requests (ids in the path, as over HTTP).
    sid = post(HTTP, "/janus", {"janus": "create", "apisecret": API_SECRET, **t()})["data"]["id"]
    hid = post(HTTP, f"/janus/{sid}", {"janus": "attach", "plugin": "janus.plugin.videoroom", "apisecret": API_SECRET, **t()})["data"]["id"]
    ids = {sid: "<session_id>", hid: "<handle_id>"}
    s = lambda path, verb, **kw: post(ADMIN, f"/admin{path}", {"janus": verb, "admin_secret": ADMIN_SECRET, **t(), **kw})
    write("admin.list_handles.json", s(f"/{sid}", "list_handles"), ids)
    write("admin.error_403_session_path.json", post(ADMIN, f"/admin/{sid}", {"janus": "list_handles", **t()}), ids)
    write("admin.error_458_no_session.json", s("/123456789", "list_handles"), ids)
    write("admin.error_459_no_handle.json", s(f"/{sid}/987654321", "hangup_webrtc"), ids)
    write("admin.error_457_session_path.json", s(f"/{sid}", "detach_handle"), ids)
    write("admin.error_457_handle_path.json", s(f"/{sid}/{hid}", "list_handles"), ids)
    write("admin.hangup_webrtc.json", s(f"/{sid}/{hid}", "hangup_webrtc"), ids)
    write("admin.detach_handle.json", s(f"/{sid}/{hid}", "detach_handle"), ids)
    write("admin.list_handles_empty.json", s(f"/{sid}", "list_handles"), ids)
    write("admin.destroy_session.json", s(f"/{sid}", "destroy_session"), ids)
    write("admin.error_458_destroyed.json", s(f"/{sid}", "list_handles"), ids)
    # Handle information, session timeouts, the VideoRoom's Admin API hook and its admin_key.
    sid = post(HTTP, "/janus", {"janus": "create", "apisecret": API_SECRET, **t()})["data"]["id"]
    hid = post(HTTP, f"/janus/{sid}", {"janus": "attach", "plugin": "janus.plugin.videoroom", "apisecret": API_SECRET, **t()})["data"]["id"]
    ids = {sid: "<session_id>", hid: "<handle_id>"}
    write("admin.handle_info.json", s(f"/{sid}/{hid}", "handle_info"), ids)
    write("admin.handle_info_plugin_only.json", s(f"/{sid}/{hid}", "handle_info", plugin_only=True), ids)
    write("admin.error_handle_info_type.json", s(f"/{sid}/{hid}", "handle_info", plugin_only="yes"), ids)
    write("admin.set_session_timeout_session.json", s(f"/{sid}", "set_session_timeout", timeout=5), ids)
    write("admin.set_session_timeout_session_default.json", s(f"/{sid}", "set_session_timeout", timeout=-1), ids)
    write("admin.error_set_session_timeout_session.json", s(f"/{sid}", "set_session_timeout", timeout=-2), ids)
    write("admin.error_set_session_timeout_missing.json", s(f"/{sid}", "set_session_timeout"), ids)
    write("admin.set_session_timeout.json", a("set_session_timeout", timeout=60))
    write("admin.error_set_session_timeout_negative.json", a("set_session_timeout", timeout=-1))
    write("admin.error_message_plugin_missing.json", a("message_plugin"))
    write("admin.error_message_plugin_invalid.json", a("message_plugin", plugin="janus.plugin.nope", request={}))
    vr = lambda **req: a("message_plugin", plugin="janus.plugin.videoroom", request=req)
    write("admin.message_plugin_list.json", vr(request="list"))
    write("admin.message_plugin_no_request.json", vr())
    write("admin.message_plugin_join.json", vr(request="join", room=1234, ptype="publisher"))
    write("admin.message_plugin_create_no_admin_key.json", vr(request="create"))
    write("admin.message_plugin_create_wrong_admin_key.json", vr(request="create", admin_key="nope"))
    created = vr(request="create", admin_key=ADMIN_KEY, is_private=True)
    write("admin.message_plugin_create.json", created)
    room = created["response"]["room"]
    write("admin.message_plugin_list_private.json", vr(request="list", admin_key=ADMIN_KEY), {room: "<room>"})
    write("admin.message_plugin_exists.json", vr(request="exists", room=room), {room: "<room>"})
    write("admin.message_plugin_destroy.json", vr(request="destroy", room=room), {room: "<room>"})
    # RTP forwarders in a room with a secret and no publisher yet.
    fwd_room = vr(request="create", admin_key=ADMIN_KEY, secret="fwdsecret")["response"]["room"]
    fr = {fwd_room: "<room>"}
    write("videoroom.listforwarders_empty.json", vr(request="listforwarders", room=fwd_room, secret="fwdsecret"), fr)
    write("videoroom.error_listforwarders_secret.json", vr(request="listforwarders", room=fwd_room, secret="nope"), fr)
    write("videoroom.error_rtp_forward_no_host.json", vr(request="rtp_forward", room=fwd_room, publisher_id=5), fr)
    write("videoroom.error_rtp_forward_no_publisher_id.json", vr(request="rtp_forward", room=fwd_room, host="127.0.0.1"), fr)
    write("videoroom.error_rtp_forward_no_such_feed.json",
          vr(request="rtp_forward", room=fwd_room, publisher_id=5, host="127.0.0.1", secret="fwdsecret",
             streams=[{"mid": "0", "port": 5000}]), fr)
    write("videoroom.error_rtp_forward_secret.json",
          vr(request="rtp_forward", room=fwd_room, publisher_id=5, host="127.0.0.1", secret="nope",
             streams=[{"mid": "0", "port": 5000}]), fr)
    write("videoroom.error_rtp_forward_stream_port.json",
          vr(request="rtp_forward", room=fwd_room, publisher_id=5, host="127.0.0.1", secret="fwdsecret",
             streams=[{"mid": "0"}]), fr)
    write("videoroom.error_rtp_forward_family.json",
          vr(request="rtp_forward", room=fwd_room, publisher_id=5, host="127.0.0.1", host_family="ipx",
             secret="fwdsecret", streams=[{"mid": "0", "port": 5000}]), fr)
    write("videoroom.error_stop_rtp_forward_no_such_feed.json",
          vr(request="stop_rtp_forward", room=fwd_room, publisher_id=5, stream_id=7, secret="fwdsecret"), fr)
    write("videoroom.error_stop_rtp_forward_no_stream_id.json",
          vr(request="stop_rtp_forward", room=fwd_room, publisher_id=5, secret="fwdsecret"), fr)
    vr(request="destroy", room=fwd_room, secret="fwdsecret")
    msg = lambda body: post(HTTP, f"/janus/{sid}/{hid}", {"janus": "message", "apisecret": API_SECRET, "body": body, **t()})
    write("videoroom.error_create_without_admin_key.json", msg({"request": "create"}), ids)
    write("videoroom.error_create_wrong_admin_key.json", msg({"request": "create", "admin_key": 5}), ids)


def signed_cases():
    t = lambda: {"transaction": "rec"}
    good = sign(f"{int(time.time()) + 3600},janus,janus.plugin.videoroom")
    created = post(HTTP, "/janus", {"janus": "create", "token": good, **t()})
    sid = created["data"]["id"]
    ids = {sid: "<session_id>"}
    write("auth.signed_create.json", created, ids)
    expired = sign(f"{int(time.time()) - 10},janus,janus.plugin.videoroom")
    write("auth.signed_error_403_expired.json", post(HTTP, "/janus", {"janus": "create", "token": expired, **t()}))
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    write("auth.signed_error_403_tampered.json", post(HTTP, "/janus", {"janus": "create", "token": tampered, **t()}))
    other = sign(f"{int(time.time()) + 3600},janus,janus.plugin.echotest")
    write("auth.signed_error_405_plugin.json",
          post(HTTP, f"/janus/{sid}", {"janus": "attach", "plugin": "janus.plugin.videoroom", "token": other, **t()}), ids)
    a = lambda verb, **kw: post(ADMIN, "/admin", {"janus": verb, "admin_secret": ADMIN_SECRET, **t(), **kw})
    write("admin.signed_error_add_token.json", a("add_token", token="tok"))


if __name__ == "__main__":
    run(False, stored_cases)
    run(True, signed_cases)
