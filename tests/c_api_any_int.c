/* SPDX-License-Identifier: Apache-2.0 */
/* For c_api_test: a C caller passing any int as a bloccs_errc, which C allows and C++ does not
   (outside the enum's range), so the call is made from here. */
#include "bloccs/bloccs.h"

const char* c_api_test_name_of_int(int raw) { return bloccs_errc_name((bloccs_errc)raw); }
