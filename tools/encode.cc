#include "tools/encode.h"

#include "snappy.h"

namespace vigil::tools {

void ToVigilWriteRequest(const Batch& batch, vigil::v1::WriteRequest& out) {
  out.Clear();
  for (const Series& s : batch.series) {
    vigil::v1::TimeSeries* ts = out.add_series();
    for (const Label& l : s.labels) {
      vigil::v1::Label* pl = ts->add_labels();
      pl->set_name(l.name);
      pl->set_value(l.value);
    }
    for (const Sample& sample : s.samples) {
      vigil::v1::Sample* ps = ts->add_samples();
      ps->set_timestamp_ms(sample.t);
      ps->set_value(sample.v);
    }
  }
}

void ToRemoteWriteRequest(const Batch& batch, prometheus::WriteRequest& out) {
  out.Clear();
  for (const Series& s : batch.series) {
    prometheus::TimeSeries* ts = out.add_timeseries();
    for (const Label& l : s.labels) {
      prometheus::Label* pl = ts->add_labels();
      pl->set_name(l.name);
      pl->set_value(l.value);
    }
    for (const Sample& sample : s.samples) {
      prometheus::Sample* ps = ts->add_samples();
      ps->set_timestamp(sample.t);
      ps->set_value(sample.v);
    }
  }
}

std::string EncodeRemoteWrite(const Batch& batch) {
  prometheus::WriteRequest req;
  ToRemoteWriteRequest(batch, req);
  std::string raw = req.SerializeAsString();
  std::string compressed;
  snappy::Compress(raw.data(), raw.size(), &compressed);
  return compressed;
}

}  // namespace vigil::tools
