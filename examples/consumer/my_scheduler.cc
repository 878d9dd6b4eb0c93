// Linking this target makes MyPolicy the default runtime's policy.
#include "my_policy.h"

WEFT_DEFAULT_POLICY(consumer::MyPolicy)
