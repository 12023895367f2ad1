"""Leaf: the certificate shown to a client names only what the interception CA may vouch for.

mitmproxy puts into each generated certificate the client's SNI, the upstream certificate's names
(Google's carries ``*.googleapis.com`` and dozens more) and the address it connects to (an IP in
transparent mode or behind ``--upstream``). Under a name-constrained CA one such name outside the
constraints makes clients reject the whole certificate, so this stage re-issues it with the names
the CA permits. A CA without constraints is left to mitmproxy's default.
"""

from __future__ import annotations

import logging

from cryptography import x509
from mitmproxy import ctx, tls

from addons._flow import contained
from tollhouse import nameconstraints

log = logging.getLogger("tollhouse.leaf")


class Leaf:
    @contained("leaf")
    def tls_start_client(self, data: tls.TlsData) -> None:
        tlsconfig = ctx.master.addons.get("tlsconfig")
        if data.ssl_conn is not None or tlsconfig is None:
            return
        store = tlsconfig.certstore
        limits = nameconstraints.of(store.default_ca.to_cryptography())
        if limits is None:
            return
        # Script addons run before mitmproxy's TlsConfig: let it build the connection now (its own
        # hook then sees ssl_conn set and leaves it), and replace the certificate on it.
        tlsconfig.tls_start_client(data)
        if data.ssl_conn is None:
            return
        entry = tlsconfig.get_cert(data.context)  # the one TlsConfig just used, from its cache
        names = list(entry.cert.altnames)
        # A client asking for `api.openai.com.` gets `api.openai.com`, which it matches (RFC 6125)
        # and the constraints permit; the dotted form itself would be refused.
        plain = [
            x509.DNSName(n.value.rstrip(".")) if isinstance(n, x509.DNSName) else n for n in names
        ]
        kept = list(dict.fromkeys(n for n in plain if nameconstraints.allows(limits, n)))
        if kept == names or not kept:
            return  # nothing to drop, or nothing the CA may vouch for: clients refuse either way
        cn = next((str(n.value) for n in kept if isinstance(n, x509.DNSName)), None)
        leaf = store.get_cert(cn, kept)
        data.ssl_conn.use_certificate(leaf.cert.to_cryptography())
        data.ssl_conn.use_privatekey(leaf.privatekey)
