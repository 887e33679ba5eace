// One object's attributes read in as few C_GetAttributeValue calls as the values allow: first
// with buffers guessed from each attribute's type (one call when they fit, which is nearly
// always), then, only for attributes that did not fit or need explaining, the size query and
// fetch of PKCS#11's two-call pattern. On a networked HSM each call is a round trip.
//
// Per PKCS#11: SENSITIVE / TYPE_INVALID / BUFFER_TOO_SMALL describe single attributes
// (ulValueLen = CK_UNAVAILABLE_INFORMATION), not the whole call, and a call returning one of
// them has still processed every attribute of its template.
#ifndef KMU11_ATTRIBUTE_READ_H
#define KMU11_ATTRIBUTE_READ_H

#include <node_api.h>

#include <cstddef>
#include <vector>

#include "pkcs11.h"

namespace kmu11 {

class AttributeRead {
 public:
  AttributeRead() = default;
  explicit AttributeRead(std::vector<CK_ATTRIBUTE_TYPE> types) : types_(std::move(types)) {}

  bool empty() const { return types_.empty(); }

  // Lane thread. CKR_OK unless the call itself failed (the object is gone, the session closed…).
  CK_RV Read(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object);

  // Loop thread: [{type, value: Buffer} | {type, unavailable: 'sensitive'|'invalid'|'unavailable'}].
  napi_value ToJs(napi_env env) const;

  // The buffer a first read gives an attribute of this type.
  static CK_ULONG Guess(CK_ATTRIBUTE_TYPE type);

 private:
  enum Status : unsigned char { kValue, kSensitive, kInvalid, kUnavailable };

  Status Classify(CK_FUNCTION_LIST* f, CK_ATTRIBUTE_TYPE type);
  CK_RV ReadBySize(CK_FUNCTION_LIST* f, const std::vector<size_t>& which);
  size_t Reserve(CK_ULONG bytes);

  std::vector<CK_ATTRIBUTE_TYPE> types_;
  CK_SESSION_HANDLE session_ = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE object_ = CK_INVALID_HANDLE;
  std::vector<Status> status_;
  std::vector<size_t> offset_;  // each value's bytes in storage_ (which may move while it grows)
  std::vector<CK_ULONG> length_;
  std::vector<CK_BYTE> storage_;
};

}  // namespace kmu11

#endif
