/*
 * Time-based debouncer for a digital input sampled on a millisecond clock, in portable C.
 * The debounced state follows the raw level once the raw level has differed from it for
 * `assert_ms` (towards active) or `release_ms` (towards inactive) without interruption.
 */
#ifndef ESTOP_DEBOUNCE_H
#define ESTOP_DEBOUNCE_H

#include <stdint.h>

struct estop_debounce {
    uint16_t assert_ms;    /* how long the raw level must stay active before the state turns active */
    uint16_t release_ms;   /* how long it must stay inactive before the state turns inactive */
    uint8_t state;         /* debounced level: 1 active, 0 inactive */
    uint8_t pending;       /* the raw level differs from `state` since `since_ms` */
    uint32_t since_ms;
};

/* Starts with the debounced state equal to `raw_active`, without waiting. */
void estop_debounce_init(struct estop_debounce *debounce, uint16_t assert_ms,
                         uint16_t release_ms, int raw_active);

/* Feeds one sample taken at `now_ms`; returns the debounced state (1 active, 0 inactive). */
uint8_t estop_debounce_sample(struct estop_debounce *debounce, int raw_active, uint32_t now_ms);

#endif
