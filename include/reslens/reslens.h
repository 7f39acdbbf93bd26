// Umbrella header: the whole public C++ API of reslens.
#pragma once

#include "reslens/cache.h"
#include "reslens/chat.h"
#include "reslens/config.h"
#include "reslens/error.h"
#include "reslens/experiment.h"
#include "reslens/explain.h"
#include "reslens/explain_request.h"
#include "reslens/hooks.h"
#include "reslens/model.h"
#include "reslens/report.h"
#include "reslens/rope.h"
#include "reslens/token_names.h"
#include "reslens/run.h"
#include "reslens/tensor.h"
#include "reslens/tokenizer.h"
#include "reslens/weights.h"
