// Tensor implementation (see include/reslens/tensor.h).
#include "reslens/tensor.h"

#include "reslens/error.h"

namespace reslens {

namespace {
int64_t element_count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw InvalidArgument("tensor dimension is negative: " + std::to_string(d));
    n *= d;
  }
  return n;
}
}  // namespace

Tensor::Tensor(std::vector<int64_t> shape) : shape_(std::move(shape)) {
  data_.assign(static_cast<size_t>(element_count(shape_)), 0.0f);
}

Tensor Tensor::uninitialized(std::vector<int64_t> shape) {
  Tensor t;
  t.data_.resize(static_cast<size_t>(element_count(shape)));
  t.shape_ = std::move(shape);
  return t;
}

float Tensor::at(std::initializer_list<int64_t> index) const {
  if (index.size() != shape_.size()) {
    throw InvalidArgument("tensor of shape " + shape_string() + " indexed with " +
                          std::to_string(index.size()) + " indices");
  }
  int64_t flat = 0;
  size_t axis = 0;
  for (int64_t i : index) {
    if (i < 0 || i >= shape_[axis]) {
      throw OutOfRange("index " + std::to_string(i) + " out of range for axis " +
                       std::to_string(axis) + " of shape " + shape_string());
    }
    flat = flat * shape_[axis] + i;
    ++axis;
  }
  return data_[static_cast<size_t>(flat)];
}

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape_.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape_[i]);
  }
  return s + "]";
}

}  // namespace reslens
