--
-- PostgreSQL database dump
--

\restrict q7Yb2LfK0tW9sXnR4eVh8cJm1aZp6uDg3oTi5yNw

-- Dumped from database version 16.10
-- Dumped by pg_dump version 16.10

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: resource_status; Type: TYPE; Schema: public; Owner: aidbox
--

CREATE TYPE public.resource_status AS ENUM (
    'created',
    'updated',
    'deleted',
    'recreated'
);


ALTER TYPE public.resource_status OWNER TO aidbox;

--
-- Name: transaction_id_seq; Type: SEQUENCE; Schema: public; Owner: aidbox
--

CREATE SEQUENCE public.transaction_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


ALTER SEQUENCE public.transaction_id_seq OWNER TO aidbox;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: group; Type: TABLE; Schema: public; Owner: aidbox
--

CREATE TABLE public."group" (
    id text NOT NULL,
    txid bigint NOT NULL,
    cts timestamp with time zone DEFAULT CURRENT_TIMESTAMP,
    ts timestamp with time zone DEFAULT CURRENT_TIMESTAMP,
    resource_type text DEFAULT 'Group'::text,
    status public.resource_status NOT NULL,
    resource jsonb NOT NULL
);


ALTER TABLE public."group" OWNER TO aidbox;

--
-- Name: group_history; Type: TABLE; Schema: public; Owner: aidbox
--

CREATE TABLE public.group_history (
    id text NOT NULL,
    txid bigint NOT NULL,
    cts timestamp with time zone DEFAULT CURRENT_TIMESTAMP,
    ts timestamp with time zone DEFAULT CURRENT_TIMESTAMP,
    resource_type text DEFAULT 'Group'::text,
    status public.resource_status NOT NULL,
    resource jsonb NOT NULL
);


ALTER TABLE public.group_history OWNER TO aidbox;

--
-- Name: patient; Type: TABLE; Schema: public; Owner: aidbox
--

CREATE TABLE public.patient (
    id text NOT NULL,
    txid bigint NOT NULL,
    cts timestamp with time zone DEFAULT CURRENT_TIMESTAMP,
    ts timestamp with time zone DEFAULT CURRENT_TIMESTAMP,
    resource_type text DEFAULT 'Patient'::text,
    status public.resource_status NOT NULL,
    resource jsonb NOT NULL
);


ALTER TABLE public.patient OWNER TO aidbox;

--
-- Name: patient_history; Type: TABLE; Schema: public; Owner: aidbox
--

CREATE TABLE public.patient_history (
    id text NOT NULL,
    txid bigint NOT NULL,
    cts timestamp with time zone DEFAULT CURRENT_TIMESTAMP,
    ts timestamp with time zone DEFAULT CURRENT_TIMESTAMP,
    resource_type text DEFAULT 'Patient'::text,
    status public.resource_status NOT NULL,
    resource jsonb NOT NULL
);


ALTER TABLE public.patient_history OWNER TO aidbox;

--
-- Name: schema_migrations; Type: TABLE; Schema: public; Owner: aidbox
--

CREATE TABLE public.schema_migrations (
    version text NOT NULL,
    applied_at timestamp with time zone,
    note text
);


ALTER TABLE public.schema_migrations OWNER TO aidbox;

--
-- Name: session; Type: TABLE; Schema: public; Owner: aidbox
--

CREATE TABLE public.session (
    id text NOT NULL,
    txid bigint NOT NULL,
    cts timestamp with time zone DEFAULT CURRENT_TIMESTAMP,
    ts timestamp with time zone DEFAULT CURRENT_TIMESTAMP,
    resource_type text DEFAULT 'Session'::text,
    status public.resource_status NOT NULL,
    resource jsonb NOT NULL
);


ALTER TABLE public.session OWNER TO aidbox;

--
-- Data for Name: group; Type: TABLE DATA; Schema: public; Owner: aidbox
--

COPY public."group" (id, txid, cts, ts, resource_type, status, resource) FROM stdin;
g1	150	2022-11-01 15:30:00+05:30	2022-12-01 16:00:00.25+05:30	Group	updated	{"type": "person", "actual": true, "member": [{"entity": {"id": "p1", "resourceType": "Patient"}}, {"entity": {"id": "p2", "resourceType": "Patient"}}]}
\.


--
-- Data for Name: group_history; Type: TABLE DATA; Schema: public; Owner: aidbox
--

COPY public.group_history (id, txid, cts, ts, resource_type, status, resource) FROM stdin;
g1	50	2022-11-01 15:30:00+05:30	2022-11-01 15:30:00+05:30	Group	created	{"type": "person", "actual": true, "member": [{"entity": {"id": "p1", "resourceType": "Patient"}}]}
\.


--
-- Data for Name: patient; Type: TABLE DATA; Schema: public; Owner: aidbox
--

COPY public.patient (id, txid, cts, ts, resource_type, status, resource) FROM stdin;
p1	180	2022-11-30 14:42:44.5+05:30	2022-12-04 19:52:10.123456+05:30	Patient	updated	{"name": [{"given": ["Anna", "Maria"], "family": "Müller-Lüdenscheidt"}], "gender": "female", "address": [{"city": "Köln", "line": ["Hauptstraße 1\\nHinterhaus"]}], "birthDate": "1980-02-29"}
p2	140	\N	2022-11-28 11:00:00+05:30	Patient	created	{"name": [{"given": ["Bob"], "family": "O'Neil"}], "gender": "male"}
\.


--
-- Data for Name: patient_history; Type: TABLE DATA; Schema: public; Owner: aidbox
--

COPY public.patient_history (id, txid, cts, ts, resource_type, status, resource) FROM stdin;
p1	100	2022-11-30 14:42:44.5+05:30	2022-11-30 14:42:44.5+05:30	Patient	created	{"name": [{"given": ["Anna"], "family": "Müller"}], "gender": "female", "birthDate": "1980-02-29"}
\.


--
-- Data for Name: schema_migrations; Type: TABLE DATA; Schema: public; Owner: aidbox
--

COPY public.schema_migrations (version, applied_at, note) FROM stdin;
20221101-init	2022-11-01 15:00:00+05:30	first\tmigration\\done
20221120-idx	\N	\N
\.


--
-- Data for Name: session; Type: TABLE DATA; Schema: public; Owner: aidbox
--

COPY public.session (id, txid, cts, ts, resource_type, status, resource) FROM stdin;
s-9f2c	170	2022-12-02 09:00:00+05:30	2022-12-02 09:00:00+05:30	Session	created	{"type": "password", "user": {"id": "admin", "resourceType": "User"}}
\.


--
-- Name: transaction_id_seq; Type: SEQUENCE SET; Schema: public; Owner: aidbox
--

SELECT pg_catalog.setval('public.transaction_id_seq', 301, true);


--
-- Name: group group_pkey; Type: CONSTRAINT; Schema: public; Owner: aidbox
--

ALTER TABLE ONLY public."group"
    ADD CONSTRAINT group_pkey PRIMARY KEY (id);


--
-- Name: patient patient_pkey; Type: CONSTRAINT; Schema: public; Owner: aidbox
--

ALTER TABLE ONLY public.patient
    ADD CONSTRAINT patient_pkey PRIMARY KEY (id);


--
-- PostgreSQL database dump complete
--

\unrestrict q7Yb2LfK0tW9sXnR4eVh8cJm1aZp6uDg3oTi5yNw

