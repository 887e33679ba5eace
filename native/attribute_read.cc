#include "attribute_read.h"

#include <napi.h>

#include "addon_data.h"
#include "marshal.h"

namespace kmu11 {

namespace {

bool Tolerated(CK_RV rv) {
  return rv == CKR_OK || rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_BUFFER_TOO_SMALL;
}

}  // namespace

CK_ULONG AttributeRead::Guess(CK_ATTRIBUTE_TYPE type) {
  switch (type) {
    case 0x011:  // CKA_VALUE: EC/DSA/secret key values, DSA's y (3072 bits); certificates may retry
      return 1024;
    case 0x120:  // CKA_MODULUS (RSA-4096: 512)
    case 0x130:  // CKA_PRIME, CKA_BASE (DSA-3072: 384)
    case 0x132:
      return 512;
    case 0x129:  // CKA_PUBLIC_KEY_INFO (RSA-4096's SPKI: 550)
      return 640;
    case 0x181:  // CKA_EC_POINT (P-521 in an OCTET STRING: 136)
      return 160;
    default:     // booleans, numbers, labels, IDs, curve OIDs, check values
      return 128;
  }
}

size_t AttributeRead::Reserve(CK_ULONG bytes) {
  const size_t offset = (storage_.size() + 7) & ~static_cast<size_t>(7);  // CK_ULONG-aligned
  storage_.resize(offset + bytes);
  return offset;
}

AttributeRead::Status AttributeRead::Classify(CK_FUNCTION_LIST* f, CK_ATTRIBUTE_TYPE type) {
  CK_ATTRIBUTE one{type, nullptr, 0};
  CK_RV rv = f->C_GetAttributeValue(session_, object_, &one, 1);
  if (rv == CKR_ATTRIBUTE_SENSITIVE) return kSensitive;
  if (rv == CKR_ATTRIBUTE_TYPE_INVALID) return kInvalid;
  return kUnavailable;
}

CK_RV AttributeRead::Read(CK_FUNCTION_LIST* f, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object) {
  session_ = session;
  object_ = object;
  const size_t n = types_.size();
  status_.assign(n, kValue);
  offset_.assign(n, 0);
  length_.assign(n, 0);
  storage_.clear();
  if (n == 0) return CKR_OK;

  size_t total = 0;
  for (size_t i = 0; i < n; ++i) total += (Guess(types_[i]) + 7) & ~static_cast<CK_ULONG>(7);
  storage_.reserve(total);
  for (size_t i = 0; i < n; ++i) offset_[i] = Reserve(Guess(types_[i]));
  std::vector<CK_ATTRIBUTE> guessed(n);
  for (size_t i = 0; i < n; ++i) guessed[i] = {types_[i], storage_.data() + offset_[i], Guess(types_[i])};
  CK_RV rv = f->C_GetAttributeValue(session_, object_, guessed.data(), n);
  if (!Tolerated(rv)) return rv;

  std::vector<size_t> retry;
  for (size_t i = 0; i < n; ++i) {
    const CK_ULONG len = guessed[i].ulValueLen;
    if (len == CK_UNAVAILABLE_INFORMATION) {
      retry.push_back(i);
    } else if (len > Guess(types_[i])) {
      return CKR_GENERAL_ERROR;  // a module claiming it wrote past the buffer is broken
    } else {
      length_[i] = len;
    }
  }
  if (retry.empty()) return CKR_OK;
  // A single unavailable attribute is explained by the call's own code.
  if (retry.size() == 1 && rv == CKR_ATTRIBUTE_SENSITIVE) {
    status_[retry[0]] = kSensitive;
    return CKR_OK;
  }
  if (retry.size() == 1 && rv == CKR_ATTRIBUTE_TYPE_INVALID) {
    status_[retry[0]] = kInvalid;
    return CKR_OK;
  }
  return ReadBySize(f, retry);
}

// The two-call pattern for the attributes in `which`: their sizes, then their values.
CK_RV AttributeRead::ReadBySize(CK_FUNCTION_LIST* f, const std::vector<size_t>& which) {
  const size_t n = which.size();
  std::vector<CK_ATTRIBUTE> sizes(n);
  std::vector<CK_ATTRIBUTE> fetch;
  std::vector<size_t> index;
  for (int attempt = 0; attempt < 4; ++attempt) {
    for (size_t k = 0; k < n; ++k) sizes[k] = {types_[which[k]], nullptr, 0};
    CK_RV rv = f->C_GetAttributeValue(session_, object_, sizes.data(), n);
    if (!Tolerated(rv)) return rv;

    size_t unavailable = 0;
    for (const auto& a : sizes) {
      unavailable += a.ulValueLen == CK_UNAVAILABLE_INFORMATION;
      if (a.ulValueLen != CK_UNAVAILABLE_INFORMATION && a.ulValueLen > kMaxValueLength) return CKR_GENERAL_ERROR;
    }
    index.clear();
    for (size_t k = 0; k < n; ++k) {
      const size_t i = which[k];
      length_[i] = 0;
      if (sizes[k].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
        if (unavailable == 1 && rv == CKR_ATTRIBUTE_SENSITIVE) {
          status_[i] = kSensitive;
        } else if (unavailable == 1 && rv == CKR_ATTRIBUTE_TYPE_INVALID) {
          status_[i] = kInvalid;
        } else {
          status_[i] = Classify(f, types_[i]);
        }
        continue;
      }
      status_[i] = kValue;
      if (sizes[k].ulValueLen == 0) continue;
      offset_[i] = Reserve(sizes[k].ulValueLen);
      length_[i] = sizes[k].ulValueLen;
      index.push_back(i);
    }
    if (index.empty()) return CKR_OK;
    fetch.clear();
    for (size_t i : index) fetch.push_back({types_[i], storage_.data() + offset_[i], length_[i]});

    rv = f->C_GetAttributeValue(session_, object_, fetch.data(), fetch.size());
    if (rv == CKR_BUFFER_TOO_SMALL) continue;  // a value grew between the calls
    if (!Tolerated(rv)) return rv;
    for (size_t k = 0; k < fetch.size(); ++k) {
      const size_t i = index[k];
      if (fetch[k].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
        length_[i] = 0;
        status_[i] = Classify(f, types_[i]);
      } else if (fetch[k].ulValueLen > length_[i]) {
        return CKR_GENERAL_ERROR;
      } else {
        length_[i] = fetch[k].ulValueLen;
      }
    }
    return CKR_OK;
  }
  return CKR_BUFFER_TOO_SMALL;
}

napi_value AttributeRead::ToJs(napi_env env) const {
  AddonData* data = AddonData::Get(env);
  napi_value keyType = data->Get(env, Key::Type);
  napi_value keyValue = data->Get(env, Key::Value);
  napi_value keyUnavailable = data->Get(env, Key::Unavailable);
  napi_value reasons[4] = {nullptr, Napi::String::New(env, "sensitive"), Napi::String::New(env, "invalid"),
                           Napi::String::New(env, "unavailable")};
  Napi::Array array = Napi::Array::New(env, types_.size());
  for (size_t i = 0; i < types_.size(); ++i) {
    Napi::Object item = Napi::Object::New(env);
    item.Set(keyType, FromUlong(env, types_[i]));
    if (status_[i] == kValue) {
      item.Set(keyValue, FromBytes(env, storage_.data() + offset_[i], length_[i]));
    } else {
      item.Set(keyUnavailable, reasons[status_[i]]);
    }
    array.Set(static_cast<uint32_t>(i), item);
  }
  return array;
}

}  // namespace kmu11
