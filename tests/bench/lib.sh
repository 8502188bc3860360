# What the benchmark scripts share (sourced): the PIDs of the servers they started and how to
# stop them, waiting for a port, and Janus's configuration.

pids=()

# Stops the servers this script started (SIGTERM, then SIGKILL after 10 s) and waits for them.
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    pids=()
}

# Waits up to 10 s for something to listen on 127.0.0.1:$1.
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$(basename "$0"): nothing listens on port $1" >&2
    return 1
}

# Writes a Janus 1.1.2 configuration into $1: the WebSocket transport on 8188 (compact JSON, as
# an operator tuning Janus would; the packaged default is indented) and the VideoRoom plugin
# with $2 as its rooms (may be empty), nothing else; ICE only on 127.0.0.2.
janus_conf() {
    local conf=$1 rooms=${2:-} lib=/usr/lib/x86_64-linux-gnu/janus
    mkdir -p "$conf"
    [ -d "$lib" ] || lib=$(dirname "$(dirname "$(find /usr/lib -name libjanus_videoroom.so | head -1)")")
    cat >"$conf/janus.jcfg" <<JCFG
general: {
    configs_folder = "$conf"
    plugins_folder = "$lib/plugins"
    transports_folder = "$lib/transports"
    events_folder = "$lib/events"
    loggers_folder = "$lib/loggers"
    debug_level = 2
    admin_secret = "bench-$RANDOM$RANDOM"
}
media: {
    rtp_port_range = "20000-40000"
}
nat: {
    nice_debug = false
    ice_enforce_list = "127.0.0.2"
    ignore_mdns = true
}
plugins: {
    disable = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so"
}
transports: {
    disable = "libjanus_http.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so"
}
loggers: {
    disable = "libjanus_jsonlog.so"
}
JCFG
    printf 'general: {\n    json = "compact"\n    ws = true\n    ws_port = 8188\n}\n' >"$conf/janus.transport.websockets.jcfg"
    printf 'general: {\n}\n%s' "$rooms" >"$conf/janus.plugin.videoroom.jcfg"
}
