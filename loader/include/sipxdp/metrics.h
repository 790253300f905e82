// Prometheus metrics of every sipxdp instance (`sipxdp exporter`), built
// with prometheus-cpp's data model and text serializer: read fresh from the
// pinned maps at each scrape, so counters are the kernel's own, monotonic
// across `apply` (they follow rule names) and gone with their rule.
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

#include "sipxdp/instance.h"

namespace sipxdp {

// Every metric family sipxdp exports, for every instance in `instances`.
// Instances that cannot be read are reported (sipxdp_instance_readable 0),
// never skipped silently.
std::vector<prometheus::MetricFamily> collect_metrics(const std::vector<Instance>& instances);

// The text exposition format of `families`.
std::string metrics_text(const std::vector<prometheus::MetricFamily>& families);

}  // namespace sipxdp
