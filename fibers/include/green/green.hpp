// green — everything in one include.
#pragma once

#include "green/errors.hpp"
#include "green/fiber.hpp"
#include "green/fiber_local.hpp"
#include "green/runtime.hpp"
#include "green/this_fiber.hpp"
#include "green/timeout.hpp"
