// Object search, attributes, copy, destroy.
#include <vector>

#include "addon_data.h"
#include "job.h"
#include "marshal.h"
#include "module_wrap.h"

namespace kmu11 {

// --------------------------- C_FindObjectsInit + C_FindObjects* + C_FindObjectsFinal
class FindObjectsJob : public Job {
 public:
  FindObjectsJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session)
      : Job(std::move(lib), "C_FindObjectsInit"), session_(session) {}
  Template filter;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    CK_RV rv = f->C_FindObjectsInit(session_, filter.data(), filter.size());
    if (rv != CKR_OK) return rv;
    fn_ = "C_FindObjects";
    CK_OBJECT_HANDLE batch[256];
    for (;;) {
      CK_ULONG found = 0;
      rv = f->C_FindObjects(session_, batch, sizeof batch / sizeof batch[0], &found);
      if (rv != CKR_OK || found == 0) break;
      // A module that reports more than it was given room for, or never stops, is broken.
      if (found > sizeof batch / sizeof batch[0] || handles_.size() > kMaxListCount * 16) {
        rv = CKR_GENERAL_ERROR;
        break;
      }
      handles_.insert(handles_.end(), batch, batch + found);
    }
    // Always end the search so the session stays usable.
    CK_RV finalRv = f->C_FindObjectsFinal(session_);
    if (rv != CKR_OK) return rv;
    fn_ = "C_FindObjectsFinal";
    return finalRv;
  }
  napi_value Result(napi_env env) override { return FromHandleArray(env, handles_.data(), handles_.size(), lib_->handles.objects); }

 private:
  CK_SESSION_HANDLE session_;
  std::vector<CK_OBJECT_HANDLE> handles_;
};

Napi::Value ModuleWrap::FindObjects(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  auto job = std::make_unique<FindObjectsJob>(lib_, session);
  job->filter.Parse(env, Arg(info, 1), "template", true);
  return Job::Queue(info.Env(), std::move(job), session);
}

// ---------------------------------------------------- C_GetAttributeValue
// Per PKCS#11: SENSITIVE / TYPE_INVALID / BUFFER_TOO_SMALL describe single
// attributes (ulValueLen = CK_UNAVAILABLE_INFORMATION), not the whole call.
class GetAttributeValueJob : public Job {
 public:
  GetAttributeValueJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                       std::vector<CK_ATTRIBUTE_TYPE> types)
      : Job(std::move(lib), "C_GetAttributeValue"), session_(session), object_(object), types_(std::move(types)) {}

 protected:
  enum Status : unsigned char { kValue, kSensitive, kInvalid, kUnavailable };

  static bool Tolerated(CK_RV rv) {
    return rv == CKR_OK || rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
           rv == CKR_BUFFER_TOO_SMALL;
  }

  // Why one attribute is unavailable: ask for it alone.
  Status Classify(CK_FUNCTION_LIST* f, CK_ATTRIBUTE_TYPE type) {
    CK_ATTRIBUTE one{type, nullptr, 0};
    CK_RV rv = f->C_GetAttributeValue(session_, object_, &one, 1);
    if (rv == CKR_ATTRIBUTE_SENSITIVE) return kSensitive;
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID) return kInvalid;
    return kUnavailable;
  }

  CK_RV Run(CK_FUNCTION_LIST* f) override {
    const size_t n = types_.size();
    status_.assign(n, kValue);
    values_.assign(n, {});
    if (n == 0) return CKR_OK;
    std::vector<CK_ATTRIBUTE> sizes(n);
    std::vector<CK_ATTRIBUTE> fetch;
    std::vector<size_t> index;
    for (int attempt = 0; attempt < 4; ++attempt) {
      for (size_t i = 0; i < n; ++i) sizes[i] = {types_[i], nullptr, 0};
      CK_RV rv = f->C_GetAttributeValue(session_, object_, sizes.data(), n);
      if (!Tolerated(rv)) return rv;

      size_t unavailable = 0;
      for (const auto& a : sizes) {
        unavailable += a.ulValueLen == CK_UNAVAILABLE_INFORMATION;
        if (a.ulValueLen != CK_UNAVAILABLE_INFORMATION && a.ulValueLen > kMaxValueLength) return CKR_GENERAL_ERROR;
      }
      fetch.clear();
      index.clear();
      for (size_t i = 0; i < n; ++i) {
        if (sizes[i].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
          // A single unavailable attribute is explained by the call's own code.
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
        values_[i].resize(sizes[i].ulValueLen);
        if (sizes[i].ulValueLen == 0) continue;
        fetch.push_back({types_[i], values_[i].data(), sizes[i].ulValueLen});
        index.push_back(i);
      }
      if (fetch.empty()) return CKR_OK;

      rv = f->C_GetAttributeValue(session_, object_, fetch.data(), fetch.size());
      if (rv == CKR_BUFFER_TOO_SMALL) continue;  // a value grew between the calls
      if (!Tolerated(rv)) return rv;
      for (size_t k = 0; k < fetch.size(); ++k) {
        size_t i = index[k];
        if (fetch[k].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
          values_[i].clear();
          status_[i] = Classify(f, types_[i]);
        } else {
          if (fetch[k].ulValueLen < values_[i].size()) values_[i].resize(fetch[k].ulValueLen);
        }
      }
      return CKR_OK;
    }
    return CKR_BUFFER_TOO_SMALL;
  }

  napi_value Result(napi_env env) override {
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
        item.Set(keyValue, FromBytes(env, values_[i].data(), values_[i].size()));
      } else {
        item.Set(keyUnavailable, reasons[status_[i]]);
      }
      array.Set(static_cast<uint32_t>(i), item);
    }
    return array;
  }

 private:
  CK_SESSION_HANDLE session_;
  CK_OBJECT_HANDLE object_;
  std::vector<CK_ATTRIBUTE_TYPE> types_;
  std::vector<Status> status_;
  std::vector<std::vector<CK_BYTE>> values_;
};

Napi::Value ModuleWrap::GetAttributeValue(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  CK_OBJECT_HANDLE object = ObjectArg(info, 1, "object");
  std::vector<CK_ATTRIBUTE_TYPE> types = ToUlongArray(env, Arg(info, 2), "types");
  auto job = std::make_unique<GetAttributeValueJob>(lib_, session, object, std::move(types));
  return Job::Queue(info.Env(), std::move(job), session);
}

// ---------------------------------------------------- C_SetAttributeValue
class SetAttributeValueJob : public Job {
 public:
  SetAttributeValueJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
      : Job(std::move(lib), "C_SetAttributeValue"), session_(session), object_(object) {}
  Template values;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    return f->C_SetAttributeValue(session_, object_, values.data(), values.size());
  }

 private:
  CK_SESSION_HANDLE session_;
  CK_OBJECT_HANDLE object_;
};

Napi::Value ModuleWrap::SetAttributeValue(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  CK_OBJECT_HANDLE object = ObjectArg(info, 1, "object");
  auto job = std::make_unique<SetAttributeValueJob>(lib_, session, object);
  job->values.Parse(env, Arg(info, 2), "template");
  return Job::Queue(info.Env(), std::move(job), session);
}

// ----------------------------------------------------------- C_CopyObject
class CopyObjectJob : public Job {
 public:
  CopyObjectJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
      : Job(std::move(lib), "C_CopyObject"), session_(session), object_(object) {}
  Template values;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    return f->C_CopyObject(session_, object_, values.data(), values.size(), &copy_);
  }
  napi_value Result(napi_env env) override { return FromHandle(env, copy_, lib_->handles.objects); }

 private:
  CK_SESSION_HANDLE session_;
  CK_OBJECT_HANDLE object_;
  CK_OBJECT_HANDLE copy_ = CK_INVALID_HANDLE;
};

Napi::Value ModuleWrap::CopyObject(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  CK_OBJECT_HANDLE object = ObjectArg(info, 1, "object");
  auto job = std::make_unique<CopyObjectJob>(lib_, session, object);
  job->values.Parse(env, Arg(info, 2), "template", true);
  return Job::Queue(info.Env(), std::move(job), session);
}

// -------------------------------------------------------- C_DestroyObject
// One handle or many in one job; every handle is attempted, the first
// failure is reported.
class DestroyObjectJob : public Job {
 public:
  DestroyObjectJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session, std::vector<CK_OBJECT_HANDLE> objects)
      : Job(std::move(lib), "C_DestroyObject"), session_(session), objects_(std::move(objects)) {}

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    CK_RV first = CKR_OK;
    for (CK_OBJECT_HANDLE object : objects_) {
      CK_RV rv = f->C_DestroyObject(session_, object);
      if (rv == CKR_OK) lib_->handles.objects.Forget(object);
      if (first == CKR_OK) first = rv;
    }
    return first;
  }

 private:
  CK_SESSION_HANDLE session_;
  std::vector<CK_OBJECT_HANDLE> objects_;
};

Napi::Value ModuleWrap::DestroyObject(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  napi_value target = Arg(info, 1);
  std::vector<CK_OBJECT_HANDLE> objects;
  if (IsArray(env, target, "object")) {
    objects = ToUlongArray(env, target, "object");
    for (CK_OBJECT_HANDLE& o : objects) o = lib_ ? lib_->handles.objects.ToNative(o) : o;
  } else {
    objects.push_back(ObjectArg(info, 1, "object"));
  }
  auto job = std::make_unique<DestroyObjectJob>(lib_, session, std::move(objects));
  return Job::Queue(info.Env(), std::move(job), session);
}

}  // namespace kmu11
