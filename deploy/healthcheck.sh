#!/usr/bin/env bash
# Container health probe for images without curl or wget (the .NET runtime images): bash's /dev/tcp only.
#   healthcheck.sh http PORT PATH   healthy when GET http://127.0.0.1:PORT/PATH answers 200
#   healthcheck.sh tcp PORT         healthy when PORT accepts a TCP connection on 127.0.0.1 or, for a
#                                   listener bound to the container's own address only, on that address
# Exit status 0 = healthy, 1 = unhealthy (what Docker's HEALTHCHECK expects).
set -u
mode=${1:-}
port=${2:-}
path=${3:-/}

case "$mode" in
  tcp)
    for address in 127.0.0.1 $(hostname -i 2>/dev/null); do
      if (exec 3<>"/dev/tcp/$address/$port") 2>/dev/null; then
        exit 0
      fi
    done
    echo "nothing accepts connections on port $port" >&2
    exit 1
    ;;
  http)
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3 || exit 1
    IFS= read -r -t 5 status <&3 || exit 1
    exec 3>&-
    # Status line: "HTTP/1.1 200 OK" (a carriage return ends it).
    [[ "$status" == "HTTP/1."?" 200"* ]] && exit 0
    echo "GET $path: ${status%$'\r'}" >&2
    exit 1
    ;;
  *)
    echo "usage: $0 http PORT PATH | tcp PORT" >&2
    exit 2
    ;;
esac
