// alerting/encoding.h
//
// Deterministic protobuf encoding for state committed through Raft: the same
// message always gives the same bytes.
#ifndef VIGIL_ALERTING_ENCODING_H_
#define VIGIL_ALERTING_ENCODING_H_

#include <string>

#include "glog/logging.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/message_lite.h"

namespace vigil::alerting {

inline std::string SerializeDeterministic(const google::protobuf::MessageLite& msg) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    CHECK(msg.SerializeToCodedStream(&coded));
  }
  return out;
}

}  // namespace vigil::alerting

#endif  // VIGIL_ALERTING_ENCODING_H_
