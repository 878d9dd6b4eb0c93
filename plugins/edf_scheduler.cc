// Links EdfPolicy as the default runtime's policy (the //plugins:edf scheduler target).
#include "weft/plugins/edf_policy.h"

WEFT_DEFAULT_POLICY(weft::plugins::EdfPolicy)
