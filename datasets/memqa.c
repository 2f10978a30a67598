// Synthetic multi-session memory QA in LoCoMo's JSON layout: two speakers chat over several dated
// sessions; a few facts (a pet, a move, a job, a count that changes over sessions) are spread over
// the sessions among filler turns, and questions need 1-3 of them. Categories follow LoCoMo:
// 1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop, 5 adversarial (adversarial_answer, no answer).
#include <stdio.h>
#include <string.h>

#include "datasets/tasks_internal.h"
#include "runtime/base/error.h"

#define PICK(r, array) ((array)[pl_rng_below((r), (int)(sizeof(array) / sizeof((array)[0])))])

static const char *const speaker_names[] = {"Ana", "Ben", "Caro", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun"};
static const char *const animals[] = {"cat", "dog", "parrot", "rabbit", "turtle"};
static const char *const pet_names[] = {"Milo", "Luna", "Pixel", "Nori", "Biscuit", "Ziggy", "Olive", "Tofu"};
static const char *const cities[][2] = {{"Lisbon", "Portugal"}, {"Osaka", "Japan"},   {"Lyon", "France"},
                                        {"Denver", "USA"},      {"Leeds", "England"}, {"Porto Alegre", "Brazil"},
                                        {"Graz", "Austria"},    {"Bergen", "Norway"}};
static const char *const jobs[] = {"nurse", "baker", "pilot", "teacher", "carpenter", "chemist"};
static const char *const items[] = {"plants", "guitars", "bikes", "paintings", "books"};
static const char *const months[] = {"January", "February", "March", "April", "May", "June", "July",
                                     "August", "September", "October", "November", "December"};
static const char *const fillers[] = {
    "How was your week?", "Pretty busy, but good.", "That sounds lovely!", "I went hiking on Sunday.",
    "The weather has been awful lately.", "I am reading a great novel.", "Work was exhausting today.",
    "We should grab coffee soon.", "Haha, that is so true.", "I tried a new recipe yesterday.",
};

typedef struct {
    int session;  // 1-based
    int speaker;  // 0 = speaker_a, 1 = speaker_b
    char text[160];
    char dia_id[32];  // filled when placed
} fact_turn;

typedef struct {
    int day, month, year;
} date;

static void format_date(char *buf, size_t n, date d, int hour, int minute) {
    snprintf(buf, n, "%d:%02d %s on %d %s, %d", hour % 12 ? hour % 12 : 12, minute, hour < 12 ? "am" : "pm", d.day,
             months[d.month], d.year);
}

static date add_days(date d, int days) {
    d.day += days;
    while (d.day > 28) {  // a 28-day calendar keeps the arithmetic obvious; dates stay valid
        d.day -= 28;
        if (++d.month == 12) d.month = 0, d.year++;
    }
    return d;
}

static json_t *make_qa(const char *question, json_t *answer, int category, const fact_turn *evidence[], int n_ev) {
    json_t *qa = json_object();
    json_object_set_new(qa, "question", json_string(question));
    json_object_set_new(qa, category == 5 ? "adversarial_answer" : "answer", answer);
    json_t *ev = json_array();
    for (int i = 0; i < n_ev; i++) json_array_append_new(ev, json_string(evidence[i]->dia_id));
    json_object_set_new(qa, "evidence", ev);
    json_object_set_new(qa, "category", json_integer(category));
    return qa;
}

// One LoCoMo sample at difficulty d.
static json_t *build_sample(pl_rng *r, int index, int d) {
    int n_sessions = d + 1, n_fill = d, hops = d < 3 ? d : 3;
    int a = pl_rng_below(r, 10), b = (a + 1 + pl_rng_below(r, 9)) % 10;
    const char *names[2] = {speaker_names[a], speaker_names[b]};
    char text[256];

    // The facts, each owned by one speaker and placed in a session.
    fact_turn facts[8];
    int n_facts = 0;
    int pet_owner = pl_rng_below(r, 2), move_owner = pl_rng_below(r, 2), job_owner = pl_rng_below(r, 2),
        count_owner = pl_rng_below(r, 2);
    const char *animal = PICK(r, animals), *pet = PICK(r, pet_names), *job = PICK(r, jobs), *item = PICK(r, items);
    int city = pl_rng_below(r, (int)(sizeof cities / sizeof cities[0]));

    fact_turn *pet_fact = &facts[n_facts++];
    *pet_fact = (fact_turn){.session = 1 + pl_rng_below(r, n_sessions), .speaker = pet_owner};
    snprintf(pet_fact->text, sizeof pet_fact->text, "I adopted a %s last week, her name is %s.", animal, pet);
    fact_turn *move_fact = &facts[n_facts++];
    *move_fact = (fact_turn){.session = 1 + pl_rng_below(r, n_sessions), .speaker = move_owner};
    snprintf(move_fact->text, sizeof move_fact->text, "Big news: I moved to %s today!", cities[city][0]);
    fact_turn *job_fact = &facts[n_facts++];
    *job_fact = (fact_turn){.session = 1 + pl_rng_below(r, n_sessions), .speaker = job_owner};
    snprintf(job_fact->text, sizeof job_fact->text, "I finally started my new job as a %s.", job);
    // The count changes over `hops` facts in increasing sessions: have k, got m more, gave j away.
    int count_first = n_facts, total = 0;
    for (int h = 0; h < hops; h++) {
        fact_turn *f = &facts[n_facts++];
        int session = 1 + (h * n_sessions) / hops + pl_rng_below(r, n_sessions / hops);
        *f = (fact_turn){.session = session, .speaker = count_owner};
        int k = 1 + pl_rng_below(r, 4);
        if (h == 0) snprintf(f->text, sizeof f->text, "I own %d %s at the moment.", k + 1, item), total = k + 1;
        else if (h == 1) snprintf(f->text, sizeof f->text, "I got %d more %s this month.", k + 1, item), total += k + 1;
        else snprintf(f->text, sizeof f->text, "I gave %d of my %s to my sister.", k < total ? k : 1, item),
                 total -= k < total ? k : 1;
    }

    // Sessions: filler turns with the session's facts at random positions.
    json_t *conv = json_object();
    json_object_set_new(conv, "speaker_a", json_string(names[0]));
    json_object_set_new(conv, "speaker_b", json_string(names[1]));
    date day = {1 + pl_rng_below(r, 28), pl_rng_below(r, 12), 2023};
    char move_date[64] = "";
    for (int s = 1; s <= n_sessions; s++) {
        char key[40], when[64];
        format_date(when, sizeof when, day, 8 + pl_rng_below(r, 13), pl_rng_below(r, 60));
        snprintf(key, sizeof key, "session_%d_date_time", s);
        json_object_set_new(conv, key, json_string(when));
        if (move_fact->session == s) snprintf(move_date, sizeof move_date, "%d %s %d", day.day, months[day.month], day.year);
        int here[8], n_here = 0;
        for (int f = 0; f < n_facts; f++)
            if (facts[f].session == s) here[n_here++] = f;
        int n_turns = n_fill + n_here, next_fact = 0, speaker = pl_rng_below(r, 2);
        json_t *turns = json_array();
        for (int t = 1; t <= n_turns; t++) {
            // place the remaining facts so they all fit: probability n_left / turns_left
            bool is_fact = next_fact < n_here && (int)pl_rng_below(r, n_turns - t + 1) < n_here - next_fact;
            fact_turn *f = is_fact ? &facts[here[next_fact++]] : NULL;
            if (f) speaker = f->speaker;
            json_t *turn = json_object();
            char dia_id[32];
            snprintf(dia_id, sizeof dia_id, "D%d:%d", s, t);
            json_object_set_new(turn, "speaker", json_string(names[speaker]));
            json_object_set_new(turn, "dia_id", json_string(dia_id));
            json_object_set_new(turn, "text", json_string(f ? f->text : PICK(r, fillers)));
            json_array_append_new(turns, turn);
            if (f) memcpy(f->dia_id, dia_id, sizeof dia_id);
            speaker = 1 - speaker;
        }
        snprintf(key, sizeof key, "session_%d", s);
        json_object_set_new(conv, key, turns);
        day = add_days(day, 1 + pl_rng_below(r, 20));
    }

    // Questions.
    json_t *qa = json_array();
    const fact_turn *ev[4] = {pet_fact};
    snprintf(text, sizeof text, "What is the name of %s's %s?", names[pet_owner], animal);
    json_array_append_new(qa, make_qa(text, json_string(pet), 4, ev, 1));
    snprintf(text, sizeof text, "What is the name of %s's %s?", names[1 - pet_owner], animal);
    json_array_append_new(qa, make_qa(text, json_string(pet), 5, ev, 1));
    ev[0] = move_fact;
    snprintf(text, sizeof text, "When did %s move to %s?", names[move_owner], cities[city][0]);
    json_array_append_new(qa, make_qa(text, json_string(move_date), 2, ev, 1));
    snprintf(text, sizeof text, "In which country does %s live now?", names[move_owner]);
    json_array_append_new(qa, make_qa(text, json_string(cities[city][1]), 3, ev, 1));
    ev[0] = job_fact;
    snprintf(text, sizeof text, "What is %s's job?", names[job_owner]);
    json_array_append_new(qa, make_qa(text, json_string(job), 4, ev, 1));
    for (int h = 0; h < hops; h++) ev[h] = &facts[count_first + h];
    snprintf(text, sizeof text, "How many %s does %s have now?", item, names[count_owner]);
    json_array_append_new(qa, make_qa(text, json_integer(total), hops > 1 ? 1 : 4, ev, hops));

    json_t *sample = json_object();
    char sample_id[32];
    snprintf(sample_id, sizeof sample_id, "memqa-%04d", index);
    json_object_set_new(sample, "sample_id", json_string(sample_id));
    json_object_set_new(sample, "difficulty", json_integer(d));  // not in LoCoMo; the loader reads it if present
    json_object_set_new(sample, "conversation", conv);
    json_object_set_new(sample, "qa", qa);
    return sample;
}

json_t *pl_memqa_build(int n_questions, uint64_t seed, int diff_lo, int diff_hi) {
    json_t *samples = json_array();
    for (int k = 0, have = 0; have < n_questions; k++) {
        pl_rng r = pl_rng_for("memqa", seed, k);
        json_t *sample = build_sample(&r, k, diff_lo + k % (diff_hi - diff_lo + 1));
        json_t *qa = json_object_get(sample, "qa");
        while (have + (int)json_array_size(qa) > n_questions) json_array_remove(qa, json_array_size(qa) - 1);
        have += (int)json_array_size(qa);
        json_array_append_new(samples, sample);
    }
    return samples;
}

int pl_memqa_write_locomo(const char *path, int n_questions, uint64_t seed, int diff_lo, int diff_hi) {
    const pl_task_info *info = pl_task_find("memqa");
    if (n_questions < 0) return pl_fail("%s: the number of questions must be >= 0", path);
    if (diff_lo > diff_hi || diff_lo < info->difficulty_min || diff_hi > info->difficulty_max)
        return pl_fail("memqa: difficulty %d:%d outside %d:%d", diff_lo, diff_hi, info->difficulty_min,
                       info->difficulty_max);
    json_t *samples = pl_memqa_build(n_questions, seed, diff_lo, diff_hi);
    int rc = json_dump_file(samples, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(samples);
    return rc == 0 ? 0 : pl_fail("%s: cannot write", path);
}
