"""The Tollhouse pipeline: the ordered chain of stage addons.

Load it into mitmproxy with ``mitmdump -s addons/__init__.py`` or ``mitmweb -s addons/__init__.py``
(``tollhouse run`` does this for you; with plain ``mitmdump`` add ``--set flow_detail=0``, or
mitmproxy prints every request's URL, keys in query strings included). The order is the pipeline;
to switch a stage off, remove it from this list. Request hooks run top to bottom; a stage that
answers the request itself (a block) stops the stages after it, because each one skips a flow that
already has a response.
"""

from addons.audit import Audit
from addons.budget import Budget
from addons.commit import Commit
from addons.dlp import Dlp
from addons.health import Health
from addons.identify import Identify
from addons.injection import Injection
from addons.leaf import Leaf
from addons.lifecycle import Lifecycle
from addons.meter import Meter
from addons.observe import Observe
from addons.pac import Pac
from addons.parse import Parse
from addons.restore import Restore
from addons.scope import Scope
from addons.settle import Settle
from addons.upstream import Upstream
from addons.websocket import Websocket
from addons.wire import Wire

addons = [
    Health(),  # requestheaders: GET /healthz addressed to the gateway itself
    Pac(),  # requestheaders: GET /proxy.pac and /wpad.dat addressed to the gateway itself
    Scope(),  # tls_clienthello / requestheaders: decrypt only AI hosts
    Upstream(),  # server_connect: optional address overrides, TLS still verified
    Leaf(),  # tls_start_client: the client's certificate names only what the CA may vouch for
    Observe(),  # next_layer / tcp_*: observed consumer apps relayed undecrypted, measured
    Identify(),  # http_connect / requestheaders: who, which app, which policy; 407 / 403
    Wire(),  # request: body decoded in full, charset checked, trailers refused
    Websocket(),  # request / websocket_*: upgrades only where allowed; every client frame scanned
    Parse(),  # request: body -> normalized exchange
    Dlp(),  # request: PII, secrets, internal ids redacted, masked, hashed or blocked
    Injection(),  # request: prompt-injection score; block or flag
    Meter(),  # request: token and cost estimate; streamed usage requested
    Budget(),  # request: reserve the worst case; warn, block or downgrade at the cap
    Commit(),  # request: exchange -> body, once
    Settle(),  # responseheaders / response / error: usage, cost
    Restore(),  # responseheaders / response: redacted values put back for the client
    Audit(),  # response / error: one row per exchange, written asynchronously
    Lifecycle(),  # SIGHUP reload, SIGTERM drain; last, so an exchange ends after its audit row
]
