"""The live gym's shop: seven small real services, a third-party payment stub and a load
generator, instrumented the standard way (prometheus_client, the OpenTelemetry SDK, JSON logs).

    python -m warroom.gym.live.shop serve --config config/cart.json   # one service
    python -m warroom.gym.live.shop gateway --port 18107               # the third party
    python -m warroom.gym.live.shop load --target http://127.0.0.1:18100 --rps 6 --seconds 60

A request's path through the shop (every arrow dials an edge proxy port from the config's
`peers`, so a fault can slow or break one edge):

    load -> frontend -> cart -> redis                           (home page, add to cart)
                     -> checkout -> cart, shipping /quote, payment -> payment-gateway,
                                    orders -> postgres INSERT, redis XADD shop:orders
    worker <- redis XREADGROUP shop:orders -> postgres UPDATE shipped_at, shipping /ship

Each service exports RED histograms per route and per peer on /metrics, SERVER and CLIENT spans
joined by W3C traceparent (carried through the stream entry to the worker) and logs, both over
OTLP/HTTP to warroom's receiver, and JSON log lines with stack traces into its `log_path`.
Version "v2-bad" (a bad deploy) breaks one code path per service with a real exception; the
`/_chaos/` hooks (loopback only) let the fault injectors leak memory, slow the consumer and
take the gateway down.
"""
