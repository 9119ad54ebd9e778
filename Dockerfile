# Rondo daemon image: builds the release binary with the same system packages as .ci/run and runs
# `rondo start` on a campaign volume.
#   docker build -t rondo .
#   docker run --rm -v rondo-runs:/runs rondo                      # the default campaign
#   docker run --rm -v $PWD/my.yaml:/cfg.yaml:ro -v rondo-runs:/runs rondo start /cfg.yaml --dir /runs/my
# SIGTERM (docker stop) finishes at the next safe point; the campaign resumes with `rondo resume`.
ARG SWIFT_IMAGE=swift:6.1-bookworm
FROM ${SWIFT_IMAGE} AS build
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends libopenblas-dev libzstd-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN swift build -c release --product rondo && cp "$(swift build -c release --show-bin-path)/rondo" /usr/local/bin/rondo

FROM ${SWIFT_IMAGE}-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends libopenblas0-pthread libzstd1 python3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/rondo /usr/local/bin/rondo
COPY --from=build /src/policies /opt/rondo/policies
COPY --from=build /src/data /opt/rondo/data
WORKDIR /opt/rondo
VOLUME /runs
STOPSIGNAL SIGTERM
ENTRYPOINT ["rondo"]
CMD ["start", "policies/demo.yaml", "--dir", "/runs/demo"]
